#!/usr/bin/env bash
# Inverse problems with an unconditional model (two moons):
#   examples/inverse/run.sh [OUT_DIR]
# trains a model of the two-moons data (or reuses OUT_DIR/run), then
#  1. inpainting: observes the first coordinate only (mask [1, 0]) at five values and draws 400
#     posterior samples of the second for each: inpaint.png shows them on vertical lines;
#  2. denoising: 500 moons points seen through noise of std 0.3 (no mask) and one posterior
#     sample for each: denoise.png shows the noisy points beside the denoised ones.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SBGM="${SBGM:-$HERE/../../build/apps/sbgm/sbgm}"
PY=/usr/bin/python3
OUT="${1:-$HERE/../../runs/inverse}"
THREADS="${THREADS:-$(nproc)}"
mkdir -p "$OUT"
if [ ! -f "$OUT/run/checkpoint.safetensors" ]; then
  "$SBGM" train --dataset moons --out "$OUT/run" --steps 6000 --lr 2e-3 --model.activation silu \
    --model.time_embedding fourier --threads "$THREADS"
fi
"$PY" - "$OUT" <<'PY'
import sys
import numpy as np
out = sys.argv[1]
first = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
np.save(f"{out}/inpaint_obs.npy", np.stack([first, np.full(5, np.nan)], 1))
np.save(f"{out}/inpaint_mask.npy", np.array([True, False]))
# Two moons as sbgm's built-in dataset draws them (centred, doubled, noise 0.1), then observation noise.
rng = np.random.default_rng(3)
a = rng.uniform(0, np.pi, 500)
upper = rng.uniform(size=500) < 0.5
x = np.where(upper[:, None], np.stack([np.cos(a), np.sin(a)], 1), np.stack([1 - np.cos(a), 0.5 - np.sin(a)], 1))
x = 2 * (x - [0.5, 0.25]) + 0.1 * rng.standard_normal(x.shape)
np.save(f"{out}/clean.npy", x)
np.save(f"{out}/noisy.npy", x + 0.3 * rng.standard_normal(x.shape))
PY
"$SBGM" inpaint --checkpoint "$OUT/run" --data "$OUT/inpaint_obs.npy" --mask "$OUT/inpaint_mask.npy" --n 400 \
  --steps 500 --out "$OUT/inpainted.npy" --png "$OUT/inpaint.png" --threads "$THREADS"
"$SBGM" inpaint --checkpoint "$OUT/run" --data "$OUT/noisy.npy" --noise-std 0.3 --steps 500 \
  --out "$OUT/denoised.npy" --png "$OUT/denoise.png" --threads "$THREADS"
echo "wrote $OUT/inpaint.png and $OUT/denoise.png"
