#!/usr/bin/env bash
# Inverse problems on images with an unconditional image model:
#   examples/inverse/images.sh RUN_DIR [OUT_DIR]
# RUN_DIR is a model of 28x28 grey images trained on Fashion-MNIST (docs/images.md trains one on
# the CPU). Eight test images (dataset-fashion-mnist's t10k file) are
#  1. inpainted with their lower half hidden, by replacement (Song et al. 2021; the default for
#     images with exact observations): inpaint.png;
#  2. denoised from noise of std 64 grey levels, exactly, by starting the reverse process at the
#     observation's noise level (--method noise-level): denoise.png.
# Each picture has one row per test image: the observation (hidden pixels mid-grey), then four
# posterior samples.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SBGM="${SBGM:-$HERE/../../build/apps/sbgm/sbgm}"
PY=/usr/bin/python3
RUN="${1:?usage: images.sh RUN_DIR [OUT_DIR]}"
OUT="${2:-$HERE/../../runs/inverse_images}"
TEST="${TEST:-/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz}"
THREADS="${THREADS:-$(nproc)}"
STEPS="${STEPS:-1000}"
mkdir -p "$OUT"
"$PY" - "$TEST" "$OUT" <<'PY'
import gzip, sys
import numpy as np
test, out = sys.argv[1:]
with gzip.open(test) as f:
    images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
x = images[:8].astype(np.float32)
np.save(f"{out}/clean.npy", x)
mask = np.ones((28, 28), np.float32)
mask[14:] = 0  # the lower half is hidden
np.save(f"{out}/lower_half_hidden.npy", mask)
np.save(f"{out}/noisy.npy", x + 64 * np.random.default_rng(5).standard_normal(x.shape).astype(np.float32))
PY
"$SBGM" inpaint --checkpoint "$RUN" --data "$OUT/clean.npy" --mask "$OUT/lower_half_hidden.npy" --method replace \
  --n 4 --steps "$STEPS" --out "$OUT/inpainted.npy" --png "$OUT/inpaint.png" --threads "$THREADS"
"$SBGM" inpaint --checkpoint "$RUN" --data "$OUT/noisy.npy" --noise-std 64 --method noise-level --n 4 \
  --steps "$STEPS" --out "$OUT/denoised.npy" --png "$OUT/denoise.png" --threads "$THREADS"
"$PY" - "$OUT" <<'PY'
import sys
import numpy as np
out = sys.argv[1]
clean = np.load(f"{out}/clean.npy")[:, None]  # [8, 1, 28, 28] beside [8, 4, 28, 28] samples
def rms(x):
    return np.sqrt((x ** 2).mean())
for name, what, rows in [("inpainted", "hidden lower half", slice(14, 28)), ("denoised", "denoising", slice(0, 28))]:
    x = np.load(f"{out}/{name}.npy").reshape(8, 4, 28, 28)
    print(f"{what}, rms error in grey levels: a posterior sample {rms((x - clean)[..., rows, :]):.1f}, "
          f"the mean of 4 {rms((x.mean(1, keepdims=True) - clean)[..., rows, :]):.1f}")
PY
echo "wrote $OUT/inpaint.png and $OUT/denoise.png"
