"""Experiment (docs/sbi.md, "A joint model of θ and x"): correct a posterior model's draws by
sampling-importance-resampling with a likelihood — p(x_o | θ) p(θ) / q(θ | x_o) — where q is the
posterior model's own density through the probability-flow ODE (its draws made with the ODE too,
so that q is their density), and the likelihood is either the task's exact one (an oracle: how far
reweighting could go) or sbgm's conditional model of x given θ (`sbgm train --data x.npy --cond
theta.npy`, log p through `sbgm loglik`): the likelihood direction that NLE learns and a joint
model would learn besides the posterior. Uses the sbgm command only; sbgm itself does not use this
file. slcp only (its exact likelihood and prior are sbibm.py's).

    python3 likelihood_reweighting.py RUN_DIR POSTERIOR_RUN LIKELIHOOD_RUN OBS[,OBS...] [--n N]

Prints a JSON line per observation: C2ST (early stopping) of the raw draws, of 10,000 resampled
with each likelihood (systematic resampling), the weights' effective sample sizes, and the rank
correlation of the learnt log-likelihood with the exact one over the draws.
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import sbibm  # noqa: E402


def resample(draws, log_w, rng, n=10000):
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    rows = np.minimum(np.searchsorted(np.cumsum(w), (rng.random() + np.arange(n)) / n), len(w) - 1)
    return draws[rows], float(1 / (w ** 2).sum())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("posterior_run")
    ap.add_argument("likelihood_run")
    ap.add_argument("obs", help="observation indices from 0, comma-separated")
    ap.add_argument("--n", type=int, default=20000, help="ODE draws per observation")
    ap.add_argument("--sbgm", default=os.environ.get("SBGM", "sbgm"))
    a = ap.parse_args()
    task = sbibm.get_task("slcp")
    run = Path(a.run_dir)
    for f in ("observations.npy", "reference.npy"):
        if not (run / f).is_file():
            sys.exit(f"likelihood_reweighting.py: {run / f} is missing (a folder examples/sbi/run.sh slcp wrote)")
    observations, reference = np.load(run / "observations.npy"), np.load(run / "reference.npy")
    rng = np.random.default_rng(0)

    def sbgm(*args):
        subprocess.run([a.sbgm, *args], check=True, stdout=subprocess.DEVNULL)

    for k in (int(s) for s in a.obs.split(",")):
        d = Path(f"reweighting_o{k}")
        d.mkdir(exist_ok=True)
        np.save(d / "xo.npy", observations[k:k + 1].astype(np.float32))
        np.save(d / "xo_rows.npy", np.repeat(observations[k:k + 1], a.n, 0).astype(np.float32))
        sbgm("sample", "--checkpoint", a.posterior_run, "--cond", str(d / "xo.npy"), "--n", str(a.n),
             "--sampler", "ode", "--out", str(d / "q.npy"))
        np.save(d / "theta.npy", np.load(d / "q.npy").reshape(a.n, -1))
        sbgm("loglik", "--checkpoint", a.posterior_run, "--data", str(d / "theta.npy"), "--cond", str(d / "xo.npy"),
             "--out", str(d / "log_q.npy"))
        sbgm("loglik", "--checkpoint", a.likelihood_run, "--data", str(d / "xo_rows.npy"), "--cond",
             str(d / "theta.npy"), "--out", str(d / "log_lik.npy"))
        theta, log_q, learnt = np.load(d / "theta.npy"), np.load(d / "log_q.npy"), np.load(d / "log_lik.npy")
        exact = task.log_likelihood(theta, observations[k])
        log_prior = task.log_prior(theta)
        inside = np.isfinite(log_prior)
        result = dict(obs=k, raw=float(sbibm.c2st(reference[k], theta[:10000], fast=True)))
        for name, log_lik in (("exact", exact), ("learnt", learnt)):
            draws, ess = resample(theta, np.where(inside, log_lik + log_prior - log_q, -np.inf), rng)
            result[name] = float(sbibm.c2st(reference[k], draws, fast=True))
            result[name + "_ess"] = round(ess)
        result["rank_correlation"] = float(stats.spearmanr(learnt[inside], exact[inside])[0])
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
