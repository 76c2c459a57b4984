"""Flow matching against score matching on the same budget (docs/flow_matching.md).

    python3 bench/flow_vs_score.py [--runs DIR] [--datasets ring8,moons] [--seeds 3] [--threads 2]

For each dataset, trains (unless already there) a score model and two flow models with the main
job's config (examples/ring8.toml: MLP 128 x 3, 6000 steps, batch 256, EMA) — the score model on
its VP SDE predicting the noise, the flow models on the linear path predicting the velocity, one
with independent data-noise pairs and one with minibatch optimal transport (train.ot_coupling) —
and then measures:

- sample quality against network evaluations: build/bench/sbgm_bench_samplers on each checkpoint
  (energy distance to held-out draws, mean true log p for ring8; mean ± standard error over seeds);
- log-likelihood accuracy against cost: `sbgm loglik` of the same 500 points (the score model's
  samples) with dopri5 at rtol = atol = 1e-2 ... 1e-5 against a tight solve (1e-8), for each
  model: mean |error| in nats and network evaluations per point.

Prints Markdown tables.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SBGM = os.environ.get("SBGM", os.path.join(ROOT, "build", "apps", "sbgm", "sbgm"))  # or a copy of the binary
BENCH = os.path.join(ROOT, "build", "bench", "sbgm_bench_samplers")
# The flow model twice: with independent pairs of data and noise, and with minibatch optimal transport.
OBJECTIVES = {"score": [], "flow": ["--objective", "flow", "--sde", "linear"],
              "flow_ot": ["--objective", "flow", "--sde", "linear", "--train.ot_coupling", "true"]}


def run(args, **kw):
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{r.stderr}")
    return r.stdout


def train(runs, dataset, objective, threads):
    out = os.path.join(runs, f"{dataset}_{objective}")
    if not os.path.exists(os.path.join(out, "checkpoint.safetensors")):
        run([SBGM, "train", "--config", os.path.join(ROOT, "examples", "ring8.toml"), "--dataset", dataset,
             "--out", out, "--threads", str(threads)] + OBJECTIVES[objective])
    return out


def loglik(ckpt, points, tol, threads):
    with tempfile.TemporaryDirectory() as tmp:
        out = run([SBGM, "loglik", "--checkpoint", ckpt, "--data", points, "--out", os.path.join(tmp, "ll.npy"),
                   "--rtol", str(tol), "--atol", str(tol), "--threads", str(threads)])
        evals = float(re.search(r"([0-9.]+) function evaluations per point", out).group(1))
        return np.load(os.path.join(tmp, "ll.npy")), evals


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--runs", default=os.path.join(ROOT, "runs", "flow_vs_score"))
    p.add_argument("--datasets", default="ring8,moons")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    os.makedirs(a.runs, exist_ok=True)
    for dataset in a.datasets.split(","):
        ckpts = {o: train(a.runs, dataset, o, a.threads) for o in OBJECTIVES}
        for objective, ckpt in ckpts.items():
            print(f"\n### {dataset}, {objective} model ({ckpt})\n", flush=True)
            # The score model's reference (em 1000) and its ODE beside every ODE row of the flow model.
            only = ["--only", "em 1000,ode"] if objective == "score" else []
            print(run([BENCH, "--checkpoint", ckpt, "--dataset", dataset, "--n", "10000", "--threads", str(a.threads),
                       "--seeds", str(a.seeds)] + only), flush=True)
        points = os.path.join(a.runs, f"{dataset}_points.npy")
        if not os.path.exists(points):
            run([SBGM, "sample", "--checkpoint", ckpts["score"], "--n", "500", "--seed", "7", "--out", points,
                 "--threads", str(a.threads)])
        print(f"\n### {dataset}: log-likelihood error against a tight solve (1e-8), 500 points\n")
        print("| rtol = atol | " + " | ".join(f"{o}: mean abs error (nats) | {o}: evaluations per point" for o in ckpts)
              + " |\n|---|" + "---|---|" * len(ckpts))
        tight = {o: loglik(c, points, 1e-8, a.threads)[0] for o, c in ckpts.items()}
        for tol in (1e-2, 1e-3, 1e-4, 1e-5):
            cells = []
            for o, c in ckpts.items():
                ll, evals = loglik(c, points, tol, a.threads)
                cells += [f"{np.abs(ll - tight[o]).mean():.2e}", f"{evals:.0f}"]
            print(f"| {tol:g} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
