#!/usr/bin/env bash
# Builds the library, the CLI and the whole test suite with AddressSanitizer and
# UndefinedBehaviorSanitizer (GCC's) in build-asan/ and runs the suite there: any out-of-bounds
# access, use after free or undefined behaviour fails its test. Slow (about 3x the normal suite);
# not part of CI. Extra arguments go to ctest (e.g. -R Cli); without them the Python suite runs
# too. SBGM_JOBS=2 runs two tests at once.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${SBGM_ASAN_BUILD_DIR:-$ROOT/build-asan}"
cmake -S "$ROOT" -B "$BUILD" -DSBGM_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSBGM_BUILD_BENCH=OFF >/dev/null
cmake --build "$BUILD" -j"${SBGM_JOBS:-$(nproc)}"
# LibTorch keeps allocations alive until exit by design: leaks are not reported.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
# The Python tests need the sanitizer runtimes loaded before the interpreter's own libraries, and
# a consumer built without them cannot link the instrumented library: those run apart (below) or
# not at all.
(cd "$BUILD" && ctest -j"${SBGM_JOBS:-1}" --output-on-failure -E "^(python_.*|install_and_consume)$" "$@")
if (($# == 0)); then
  LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)" PYTHONPATH="$BUILD/python" \
    OMP_NUM_THREADS=1 /usr/bin/python3 -m pytest -q -p no:cacheprovider "$ROOT/python/tests"
fi
