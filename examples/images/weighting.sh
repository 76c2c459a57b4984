#!/usr/bin/env bash
# Maximum-likelihood training against the default on the 8x8 digits (examples/images/digits.toml:
# its network, seed, batch and steps): the sigma^2 weighting with uniform times (the default), and
# the likelihood weighting with times drawn uniformly in log-SNR (Song, Durkan et al. 2021; the
# importance sampling under which that weighting's per-sample weight is constant). For each, the
# test set's variational bound in bits/dim with its Monte-Carlo standard error at every
# checkpoint of training (as sdeflow-light plots it), and the ODE's bits/dim at the end.
# Usage: examples/images/digits_weighting.sh [OUT_DIR] [STEPS] [SEED]   (two trainings: ~10 min each on 2 cores)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${1:-$ROOT/runs/digits_weighting}"
STEPS="${2:-6000}"
SEED="${3:-0}"
EVERY=$((STEPS / 6))
SBGM="${SBGM:-$ROOT/build/apps/sbgm/sbgm}"
mkdir -p "$OUT"
/usr/bin/python3 "$ROOT/examples/images/digits_data.py" "$OUT"
TEST="$OUT/digits_test.npy"

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
  "$SBGM" train --config "$ROOT/examples/images/digits.toml" --data "$OUT/digits_train.npy" --out "$run" \
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
