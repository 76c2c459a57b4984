#!/usr/bin/env bash
# The CUDA path, end to end, on a machine with an NVIDIA GPU and PyTorch 2.x installed: builds sbgm
# against PyTorch's LibTorch (README "On a GPU machine"), runs the Gpu.* tests, the GPU benchmarks
# of docs/benchmarks.md ("On an NVIDIA GPU"), the Python package's tests and the whole suite.
# Logs go to OUT_DIR; each step is cut short so that the whole run ends within the budget.
#
#   scripts/gpu_check.sh OUT_DIR [DEPS_DIR]       SBGM_GPU_BUDGET=seconds (default 540)
#                                                 SBGM_GPU_STEPS="gpu bench python suite" (the default)
#
# DEPS_DIR is for a machine whose distribution lacks sbgm's other dependencies (CLI11, toml++,
# nlohmann-json, stb, libzip, zlib's headers, GoogleTest, pkg-config): Debian 12's packages
# unpacked with `dpkg -x PACKAGE.deb DEPS_DIR/root`; libraries that libzip needs and the machine
# lacks, unpacked the same way under DEPS_DIR/fallback.
set -uo pipefail
OUT_DIR="$(mkdir -p "$1" && cd "$1" && pwd)"
DEPS="${2:+$(cd "$2" && pwd)}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${SBGM_BUILD_DIR:-$ROOT/build-cuda}"
mkdir -p "$BUILD"
DEADLINE=$((SECONDS + ${SBGM_GPU_BUDGET:-540}))
JOBS="$(nproc)"
PYTHON="$(command -v python3)"
STEPS=" ${SBGM_GPU_STEPS:-gpu bench python suite} "
wanted() { [[ "$STEPS" == *" $1 "* ]]; }
left() { echo $((DEADLINE - SECONDS > 5 ? DEADLINE - SECONDS : 5)); }
step() { echo "== $(date +%T) [${SECONDS} s] $*"; }

step "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
echo "$(nproc) cores; $(g++ --version | head -1); $(cmake --version | head -1)"
"$PYTHON" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, "GPU", torch.cuda.is_available())'

args=(-DCMAKE_BUILD_TYPE=Release -DSBGM_TEST_PYTHON="$PYTHON" -DPython3_EXECUTABLE="$PYTHON"
      -DCMAKE_PREFIX_PATH="$("$PYTHON" -c 'import torch; print(torch.utils.cmake_prefix_path)')")
pybind11_dir="$("$PYTHON" -m pybind11 --cmakedir 2>/dev/null)" && args+=(-Dpybind11_DIR="$pybind11_dir")
if [[ -n "$DEPS" ]]; then
  D="$DEPS/root"
  LIB="$D/usr/lib/x86_64-linux-gnu"
  export PKG_CONFIG_SYSROOT_DIR="$D" PKG_CONFIG_LIBDIR="$LIB/pkgconfig:$D/usr/share/pkgconfig"
  export LD_LIBRARY_PATH="$LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  if ldd "$LIB/libzip.so.4" | grep -q "not found"; then
    LD_LIBRARY_PATH+=":$DEPS/fallback/usr/lib/x86_64-linux-gnu:$DEPS/fallback/lib/x86_64-linux-gnu"
  fi
  command -v pkg-config >/dev/null || args+=(-DPKG_CONFIG_EXECUTABLE="$D/usr/bin/pkgconf")
  args+=(-DTOMLPP_INCLUDE_DIR="$D/usr/include" -DNLOHMANN_JSON_INCLUDE_DIR="$D/usr/include"
         -DCLI11_DIR="$D/usr/share/cmake/CLI11" -DGTest_DIR="$LIB/cmake/GTest")
  if [[ ! -f /usr/include/zlib.h ]]; then
    args+=(-DZLIB_INCLUDE_DIR="$D/usr/include" -DZLIB_LIBRARY="$(ldconfig -p | awk '/libz\.so\.1 /{print $NF; exit}')")
  fi
fi

step "configure"
if ! cmake -S "$ROOT" -B "$BUILD" "${args[@]}" >"$BUILD/configure.log" 2>&1; then
  tail -25 "$BUILD/configure.log"
  step "configure again without the Python package"
  if ! cmake -S "$ROOT" -B "$BUILD" "${args[@]}" -DSBGM_BUILD_PYTHON=OFF >"$BUILD/configure.log" 2>&1; then
    tail -40 "$BUILD/configure.log"
    exit 1
  fi
fi
grep -E "sbgm distributed|CUDA|Torch" "$BUILD/configure.log" | head -8
step "build ($JOBS jobs)"
if ! timeout "$(left)" cmake --build "$BUILD" -j "$JOBS" -- -k >"$OUT_DIR/build.log" 2>&1; then
  grep -E "error|Error" "$OUT_DIR/build.log" | grep -v "^make" | sort -u | head -60
  exit 1
fi

if wanted gpu; then
step "Gpu.* tests"
timeout "$(left)" "$BUILD/tests/sbgm_tests" --gtest_filter='Gpu.*' 2>&1 | tee "$OUT_DIR/gpu_tests.log" |
  grep -E "^\[ +(OK|FAILED|SKIPPED|PASSED) |Failure|Expected|Which is|actual" | head -40

fi
if wanted bench; then
step "benchmarks: image networks, sbgm against PyTorch on the GPU"
for precision in float32 bfloat16; do
  timeout "$(left)" "$PYTHON" "$ROOT/bench/compare_image_nets.py" --build "$BUILD" --device cuda \
    --batch 256 --iters 20 --precision "$precision" 2>&1 | tee -a "$OUT_DIR/bench.log"
done

step "benchmarks: the command line, $JOBS CPU threads against the GPU"
SBGM="$BUILD/apps/sbgm/sbgm"
W="$(mktemp -d)"
clock() {  # seconds a command took, its output kept in the log
  local start end
  start="$(date +%s.%N)"
  timeout "$(left)" "$@" >>"$W/cli.log" 2>&1 || echo "(failed: $*)"
  end="$(date +%s.%N)"
  awk "BEGIN { printf \"%.2f\", $end - $start }"
}
for device in cpu cuda; do
  t=$(clock "$SBGM" train --config "$ROOT/examples/ring8.toml" --out "$W/ring8_$device" --steps 2000 \
        --device "$device" --threads "$JOBS")
  echo "train ring8 MLP 2000 steps, batch 256, $device: $t s" | tee -a "$OUT_DIR/bench.log"
done
"$SBGM" sample --checkpoint "$W/ring8_cpu" --n 10000 --steps 100 --out "$W/x.npy" --threads "$JOBS" >/dev/null 2>&1
for device in cpu cuda; do
  t=$(clock "$SBGM" sample --checkpoint "$W/ring8_cpu" --n 10000 --steps 1000 --out "$W/s_$device.npy" \
        --device "$device" --threads "$JOBS")
  echo "sample 10000 points, Euler-Maruyama 1000 steps, $device: $t s" | tee -a "$OUT_DIR/bench.log"
  t=$(clock "$SBGM" loglik --checkpoint "$W/ring8_cpu" --data "$W/x.npy" --out "$W/l_$device.npy" \
        --device "$device" --threads "$JOBS")
  echo "loglik of 10000 points (adaptive ODE, exact divergence), $device: $t s" | tee -a "$OUT_DIR/bench.log"
done
"$PYTHON" - "$W" <<'EOF' | tee -a "$OUT_DIR/bench.log"
import sys, numpy as np
w = sys.argv[1]
a, b = np.load(f"{w}/l_cpu.npy"), np.load(f"{w}/l_cuda.npy")
print(f"loglik cpu vs cuda: mean {a.mean():.4f} vs {b.mean():.4f}, largest difference {np.abs(a - b).max():.2e} nats")
EOF
fi
if wanted python; then
step "the Python package"
PYTHONPATH="$BUILD/python" OMP_NUM_THREADS=1 timeout "$(left)" "$PYTHON" -m pytest -q -p no:cacheprovider \
  "$ROOT/python/tests" >"$OUT_DIR/pytest.log" 2>&1
tail -15 "$OUT_DIR/pytest.log"

fi
if wanted suite; then
step "the whole suite"
timeout "$(left)" ctest --test-dir "$BUILD" -j "$JOBS" --timeout 300 -E '^Gpu\.' >"$OUT_DIR/ctest.log" 2>&1
grep -E "tests passed|Failed|\*\*\*|Total Test" "$OUT_DIR/ctest.log" | head -30
timeout "$(left)" ctest --test-dir "$BUILD" --rerun-failed --output-on-failure -j "$JOBS" --timeout 120 \
  >"$OUT_DIR/failures.log" 2>&1
crashed="$(grep -m1 -oP '(?<=: )[A-Za-z0-9_]+\.[A-Za-z0-9_]+(?= \.+\*\*\*Exception: SegFault)' "$OUT_DIR/ctest.log")"
debugger="$(command -v gdb || command -v cuda-gdb)"
if [[ -n "$crashed" && -n "$debugger" ]]; then
  step "where $crashed crashed"
  OMP_NUM_THREADS=1 timeout "$(left)" "$debugger" -batch -ex run -ex bt --args "$BUILD/tests/sbgm_tests" \
    --gtest_filter="$crashed" >"$OUT_DIR/crash.log" 2>&1
  grep -A30 -E "received signal" "$OUT_DIR/crash.log" | head -40
fi

fi
step "done"
