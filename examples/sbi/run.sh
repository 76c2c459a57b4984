#!/usr/bin/env bash
# One cell of the sbibm benchmark (Lueckmann et al. 2021) with neural posterior score estimation:
#   examples/sbi/run.sh TASK BUDGET [--seed S] [--out DIR] [--obs K] [--fast-c2st] [--bounded] [-- SBGM-TRAIN-ARGS]
# TASK: gaussian_linear, gaussian_linear_uniform, two_moons, gaussian_mixture, slcp, bernoulli_glm,
# sir, lotka_volterra; or bernoulli_glm_raw (the raw spike trains as x, with observations and exact
# reference posteriors made at bernoulli_glm's true parameters). Simulates BUDGET pairs from the prior predictive, trains p(θ | x) with sbgm's
# defaults (anything after -- goes to `sbgm train`, e.g. `-- --config examples/sbi/npse.toml`;
# --bounded gives it the prior's support, --lower/--upper), samples 10,000 draws for each of
# sbibm's 10 observations and scores them against sbibm's reference posteriors with sbibm's
# C2ST, so the result compares with the published tables (shared/sbibm/README.md). Writes
# DIR/result.json (default DIR: runs/sbi/TASK_BUDGET_seedS).
# Needs the sbibm data folder (shared/sbibm above the repository, or SBIBM_DATA); SBGM overrides the
# binary. All the work is in sbibm.py (`sbibm.py --help`).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec /usr/bin/python3 "$HERE/sbibm.py" run "$@"
