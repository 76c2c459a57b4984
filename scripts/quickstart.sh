#!/usr/bin/env bash
# Installs what is missing, builds in Release, then runs the main job: fit the ring of 8
# Gaussians and write samples and pictures to runs/ring8 (about a minute on 2 cores).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
SBGM="${SBGM_BUILD_DIR:-$ROOT/build}/apps/sbgm/sbgm"
"$SBGM" train --config "$ROOT/examples/ring8.toml" --out "$ROOT/runs/ring8" --threads "$(nproc)"
"$SBGM" sample --checkpoint "$ROOT/runs/ring8" --n 5000 --out "$ROOT/runs/ring8/more_samples.npy" \
  --png "$ROOT/runs/ring8/more_samples.png" --threads "$(nproc)"
echo "done: pictures in runs/ring8/samples.png, runs/ring8/loss.png and runs/ring8/more_samples.png"
