#!/usr/bin/env bash
# Builds the library, the CLI and the whole test suite with AddressSanitizer and
# UndefinedBehaviorSanitizer (GCC's) in build-asan/ and runs the suite there: any out-of-bounds
# access, use after free or undefined behaviour fails its test. Slow (about 3x the normal suite);
# not part of CI. Extra arguments go to ctest (e.g. -R Cli).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${SBGM_ASAN_BUILD_DIR:-$ROOT/build-asan}"
cmake -S "$ROOT" -B "$BUILD" -DSBGM_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSBGM_BUILD_BENCH=OFF >/dev/null
cmake --build "$BUILD" -j"${SBGM_JOBS:-$(nproc)}"
# LibTorch keeps allocations alive until exit by design: leaks are not reported.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
cd "$BUILD" && ctest -j1 --output-on-failure "$@"
