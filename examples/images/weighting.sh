#!/usr/bin/env bash
# Maximum-likelihood training against the default on a CPU budget: the sigma^2 weighting with
# uniform times (the default), and the likelihood weighting with times drawn uniformly in log-SNR
# (Song, Durkan et al. 2021; the importance sampling under which that weighting's per-sample weight
# is constant). For each, the test set's variational bound in bits/dim with its Monte-Carlo
# standard error at every sixth of training (as sdeflow-light plots it), and the ODE's bits/dim at
# the end.
# Usage: examples/images/weighting.sh DATASET [OUT_DIR] [STEPS] [SEED]
#   digits:        examples/images/digits.toml as it is (UNet 32 x [1, 2], batch 128; STEPS 6000:
#                  ~10 min a training on 2 cores), its 297 test images
#   fashion_mnist: examples/images/fashion_mnist_unet.toml cut to a CPU's size as
#                  bench/flow_vs_score_images.py cuts it (width 16, one block per resolution, no
#                  dropout, batch 64, lr 1e-3, EMA 0.999; STEPS 1500: ~14 min a training), the
#                  first 100 test images (needs Debian's dataset-fashion-mnist)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DATASET="${1:-}"
OUT="${2:-$ROOT/runs/weighting_$DATASET}"
SEED="${4:-0}"
SBGM="${SBGM:-$ROOT/build/apps/sbgm/sbgm}"
FMNIST="${FMNIST:-/usr/share/datasets/fashion-mnist}"
case "$DATASET" in
  digits)
    STEPS="${3:-6000}"
    mkdir -p "$OUT"
    /usr/bin/python3 "$ROOT/examples/images/digits_data.py" "$OUT"
    TEST="$OUT/digits_test.npy"
    TRAIN=(--config "$ROOT/examples/images/digits.toml" --data "$OUT/digits_train.npy")
    ;;
  fashion_mnist)
    STEPS="${3:-1500}"
    for f in train-images-idx3-ubyte.gz t10k-images-idx3-ubyte.gz; do
      [[ -f "$FMNIST/$f" ]] || { echo "weighting.sh: $FMNIST/$f is missing (apt install dataset-fashion-mnist, or set FMNIST)" >&2; exit 2; }
    done
    mkdir -p "$OUT"
    TEST="$OUT/fmnist_test100.npy"
    /usr/bin/python3 - "$FMNIST/t10k-images-idx3-ubyte.gz" "$TEST" <<'PY'
import gzip, sys
import numpy as np
raw = gzip.open(sys.argv[1], "rb").read()
np.save(sys.argv[2], np.frombuffer(raw, np.uint8, 100 * 784, 16).reshape(100, 1, 28, 28).astype(np.float32))
PY
    TRAIN=(--config "$ROOT/examples/images/fashion_mnist_unet.toml" --data "$FMNIST/train-images-idx3-ubyte.gz"
           --model.width 16 --model.depth 1 --model.dropout 0 --batch-size 64 --lr 1e-3
           --train.warmup_steps 100 --train.ema_decay 0.999)
    ;;
  *) echo "weighting.sh: DATASET must be digits or fashion_mnist" >&2; exit 2 ;;
esac
EVERY=$((STEPS / 6))

# A checkpoint is replaced in place as training goes (each by a rename: a new inode): until the
# training PID ends, each new one is copied aside, named by its step.
keep_checkpoints() {
  local run="$1" pid="$2" seen="" alive stamp step
  mkdir -p "$run/kept"
  while true; do
    alive=0
    if kill -0 "$pid" 2>/dev/null; then alive=1; fi
    if [[ -f "$run/checkpoint.safetensors" ]]; then
      stamp=$(stat -c %i.%Y "$run/checkpoint.safetensors")
      if [[ "$stamp" != "$seen" ]]; then
        seen="$stamp"
        cp "$run/checkpoint.safetensors" "$run/kept/copy.safetensors"
        step=$("$SBGM" info --checkpoint "$run/kept/copy.safetensors" | sed -n 's/^step: \([0-9]*\) of.*/\1/p')
        mv "$run/kept/copy.safetensors" "$run/kept/step_$step.safetensors"
      fi
    fi
    if ((!alive)); then break; fi
    sleep 5
  done
}

for variant in "sigma2 uniform" "likelihood logsnr"; do
  read -r weighting times <<<"$variant"
  run="$OUT/$weighting"
  "$SBGM" train "${TRAIN[@]}" --out "$run" \
    --steps "$STEPS" --train.seed "$SEED" --train.checkpoint_every "$EVERY" --train.eval_every 0 \
    --train.weighting "$weighting" --train.time_sampling "$times" &
  train_pid=$!
  keep_checkpoints "$run" "$train_pid"
  wait "$train_pid"
done

echo "weighting,time_sampling,step,elbo_bits_per_dim,std_error" >"$OUT/bound_over_training.csv"
for variant in "sigma2 uniform" "likelihood logsnr"; do
  read -r weighting times <<<"$variant"
  for name in $(ls "$OUT/$weighting/kept" | sort -t_ -k2 -n); do
    ck="$OUT/$weighting/kept/$name"
    step=$(basename "$name" .safetensors | sed 's/step_//')
    line=$("$SBGM" loglik --checkpoint "$ck" --data "$TEST" --dequantize --bpd --bound elbo-dsm --draws 64 \
      --out "$OUT/$weighting/elbo_$step.npy")
    mean=$(sed -n 's/^mean ELBO, bits\/dim over [0-9]* rows: \([-0-9.e]*\) +- \([-0-9.e]*\).*/\1,\2/p' <<<"$line")
    echo "$weighting,$times,$step,$mean" | tee -a "$OUT/bound_over_training.csv"
  done
  "$SBGM" loglik --checkpoint "$OUT/$weighting" --data "$TEST" --dequantize --bpd \
    --divergence hutchinson --probes 4 --out "$OUT/$weighting/test_bpd.npy"
done
