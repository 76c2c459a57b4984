#!/usr/bin/env bash
# `pip install .` of the checkout into a fresh virtual environment, offline and without build
# isolation (Debian's setuptools), reusing the CMake build tree; then the installed package is
# imported from outside the source tree and samples an analytic model.
#   pip_install_check.sh PYTHON SOURCE_DIR BUILD_DIR WORK_DIR
set -euo pipefail
PYTHON="$1" SRC="$2" BUILD="$3" WORK="$4"
rm -rf "$WORK"
"$PYTHON" -m venv --system-site-packages "$WORK/venv"
SBGM_CMAKE_BUILD_DIR="$BUILD" "$WORK/venv/bin/pip" install --quiet --no-build-isolation --no-deps --no-index \
  "$SRC" 2>&1 | grep -v "^\s*$" || true
cd "$WORK"
"$WORK/venv/bin/python" - <<'PY'
import os, numpy as np, sbgm
assert "site-packages" in sbgm.__file__, sbgm.__file__
m = sbgm.gaussian_mixture([1.0], [[0.0, 0.0]], [np.eye(2)])
x = m.sample(200, steps=200, progress=False)
assert x.shape == (200, 2) and np.isfinite(x).all()
print("installed sbgm", sbgm.__version__, "at", os.path.dirname(sbgm.__file__), "samples", x.shape)
PY
