#!/usr/bin/env bash
# Neural posterior score estimation on an sbibm task with a known posterior:
#   examples/sbi/run.sh TASK BUDGET [OUT_DIR]     (TASK: gaussian_linear or two_moons)
# simulates BUDGET pairs (theta, x) from the prior predictive, trains p(theta | x) with sbgm,
# draws 10000 posterior samples for each of 10 observations (Euler-Maruyama, 500 steps),
# evaluates log p(theta | x_o) of the reference draws, and scores the samples against reference
# posterior samples with C2ST (0.5 = indistinguishable). Python (NumPy, SciPy, scikit-learn)
# simulates and scores only; sbgm does the rest.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SBGM="${SBGM:-$HERE/../../build/apps/sbgm/sbgm}"
PY=/usr/bin/python3
TASK="$1"; BUDGET="$2"; OUT="${3:-$HERE/../../runs/sbi/${TASK}_${BUDGET}}"
THREADS="${THREADS:-$(nproc)}"
# About 300 epochs (where sbi's early stopping usually ends), 1000 to 20000 steps of 256: longer
# runs memorise small budgets (20000 steps on 1000 pairs gave C2ST 0.999).
# With EARLY_STOPPING=1 the length is chosen instead as sbi chooses it: 10% of the pairs held out,
# training stops 20 validations (every 10 steps) after the best held-out loss, whose weights
# are kept, with a constant learning rate.
STEPS=$(( BUDGET * 300 / 256 )); STEPS=$(( STEPS < 1000 ? 1000 : STEPS > 20000 ? 20000 : STEPS ))
LENGTH=(--steps "$STEPS")
if [[ "${EARLY_STOPPING:-0}" == 1 ]]; then
  LENGTH=(--steps 20000 --train.schedule constant --train.validation_fraction 0.1 --train.patience 20 --train.log_every 10)
fi
mkdir -p "$OUT"
"$PY" "$HERE/tasks.py" simulate "$TASK" "$BUDGET" "$OUT"
"$PY" "$HERE/tasks.py" observe "$TASK" "$OUT"
start=$(date +%s)
"$SBGM" train --config "$HERE/npse.toml" --data "$OUT/theta.npy" --cond "$OUT/x.npy" --out "$OUT/run" "${LENGTH[@]}" --threads "$THREADS"
trained=$(date +%s)
"$SBGM" sample --checkpoint "$OUT/run" --cond "$OUT/observations.npy" --n 10000 --out "$OUT/posterior.npy" \
  --png "$OUT/posterior.png" --threads "$THREADS"
sampled=$(date +%s)
"$PY" -c "import numpy as np; np.save('$OUT/reference_first.npy', np.load('$OUT/reference.npy')[0, :2000])
np.save('$OUT/observation_first.npy', np.load('$OUT/observations.npy')[:1])"
"$SBGM" loglik --checkpoint "$OUT/run" --cond "$OUT/observation_first.npy" --data "$OUT/reference_first.npy" \
  --out "$OUT/reference_logp.npy" --threads "$THREADS"
echo "train $((trained - start)) s, sample $((sampled - trained)) s"
"$PY" "$HERE/tasks.py" c2st "$OUT/posterior.npy" "$OUT/reference.npy" | tee "$OUT/c2st.txt"
