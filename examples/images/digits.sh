#!/usr/bin/env bash
# A small UNet on the 8x8 handwritten digits that Debian's python3-sklearn ships (1,797 images,
# 17 grey levels), trained on this machine's CPU: samples, a denoising strip and bits/dim.
# Usage: examples/images/digits.sh [OUT_DIR]   (about 15 minutes on 2 cores)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${1:-$ROOT/runs/digits}"
SBGM="${SBGM:-$ROOT/build/apps/sbgm/sbgm}"
mkdir -p "$OUT"
/usr/bin/python3 "$ROOT/examples/images/digits_data.py" "$OUT"
"$SBGM" train --config "$ROOT/examples/images/digits.toml" --data "$OUT/digits_train.npy" --out "$OUT/run"
"$SBGM" sample --checkpoint "$OUT/run" --n 100 --out "$OUT/samples.npy" --png "$OUT/samples.png"
"$SBGM" sample --checkpoint "$OUT/run" --n 8 --trajectories 8 --out "$OUT/strip_samples.npy" --png "$OUT/denoising.png"
"$SBGM" loglik --checkpoint "$OUT/run" --data "$OUT/digits_test.npy" --dequantize --bpd \
  --divergence hutchinson --probes 4 --out "$OUT/test_bpd.npy"
# For scale: independent per-pixel histograms of the training levels (add-one smoothing) on the
# same test images.
/usr/bin/python3 - "$OUT" <<'PY'
import sys, numpy as np
train = np.load(sys.argv[1] + "/digits_train.npy").reshape(-1, 64).astype(int)
test = np.load(sys.argv[1] + "/digits_test.npy").reshape(-1, 64).astype(int)
counts = np.ones((64, 17)) + np.stack([np.bincount(train[:, j], minlength=17) for j in range(64)])
p = counts / counts.sum(1, keepdims=True)
print("independent per-pixel histograms: %.4f bits/dim" % -np.mean(np.log2(p[np.arange(64), test])))
PY
