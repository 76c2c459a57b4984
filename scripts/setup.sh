#!/usr/bin/env bash
# Installs the Debian packages sbgm needs (only those missing) and builds it in Release.
# Sourced by quickstart.sh and test.sh; safe to run again (does nothing that is already done).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${SBGM_BUILD_DIR:-$ROOT/build}"

# Runtime and build dependencies. libopenblas0-openmp: without an optimised BLAS Debian's
# libtorch multiplies on the reference BLAS (~15x slower); the OpenMP flavour shares libtorch's
# OpenMP thread pool instead of fighting it. libgloo-dev: the headers of the Gloo process groups
# inside libtorch (data-parallel training). python3-numpy and python3-scipy are test oracles only;
# python3-sklearn (C2ST) and python3-pytest run the SBI benchmark's checks (examples/sbi).
# pybind11-dev and python3-dev build the Python package (python/); python3-venv, -pip, -setuptools
# and -wheel install it offline into a virtual environment (docs/python.md); python3-matplotlib
# draws the Python examples' pictures; python3-torch (Debian's, the same LibTorch 1.13 as
# libtorch-dev) lets the Python tests script a network of their own (model.type = torchscript).
PACKAGES=(
  g++ cmake make pkg-config
  libtorch-dev libopenblas0-openmp
  libcli11-dev libtomlplusplus-dev nlohmann-json3-dev libstb-dev libzip-dev zlib1g-dev libgloo-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3-numpy python3-scipy python3-sklearn python3-pytest
  pybind11-dev python3-dev python3-venv python3-pip python3-setuptools python3-wheel python3-matplotlib
  python3-torch
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "sbgm setup: installing ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

JOBS="${SBGM_JOBS:-$(nproc)}"
LAUNCHER=()
if command -v ccache >/dev/null 2>&1; then
  LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release "${LAUNCHER[@]}" ${SBGM_CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS"
