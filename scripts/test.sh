#!/usr/bin/env bash
# Installs what is missing, builds in Release, then runs the whole test suite.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
cd "${SBGM_BUILD_DIR:-$ROOT/build}"
ctest --output-on-failure -j "$(nproc)" --timeout 900
