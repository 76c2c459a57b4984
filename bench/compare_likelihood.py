#!/usr/bin/env python3
"""Exact log-likelihoods of N points under a trained MLP: sbgm (C++) against a reference that does
what score_sde does -- PyTorch for the network, scipy's RK45 on the flattened batch, the exact
divergence by autograd -- on the same model, points and tolerances, in this one script.

    /usr/bin/python3 bench/compare_likelihood.py --checkpoint runs/ring8 [--n 10000] [--threads 1] [--oracle-tol 1e-7]

sbgm runs twice: with its default PI step control, and with the integral control that is scipy's
RK45 step for step. Prints the times, the ratios, and the largest differences between the sets of
values; with --oracle-tol also each one's error against a tight float64 solve by sbgm (slow: the
ReLU network's kinks make tight tolerances expensive).
"""
import argparse
import json
import os
import subprocess
import tempfile
import time

import numpy as np
import torch
from scipy.integrate import solve_ivp

p = argparse.ArgumentParser()
p.add_argument("--build", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build"))
p.add_argument("--checkpoint", required=True)
p.add_argument("--n", type=int, default=10000)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--tol", type=float, default=1e-5)
p.add_argument("--oracle-tol", type=float, default=0.0)
args = p.parse_args()

work = tempfile.mkdtemp(prefix="sbgm_loglik_")
exe = os.path.join(args.build, "bench", "sbgm_bench_loglik")


def run_sbgm(name, controller, tol=args.tol, *extra):
    out = subprocess.run([exe, "--checkpoint", args.checkpoint, "--export", work, "--n", str(args.n), "--threads",
                          str(args.threads), "--rtol", str(tol), "--atol", str(tol), "--controller", controller,
                          "--name", name, *extra], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


runs = {"pi": run_sbgm("sbgm_pi", "pi"), "integral": run_sbgm("sbgm_integral", "integral")}
cpp = runs["pi"]
load = lambda name: np.load(os.path.join(work, name))  # noqa: E731

# The model, rebuilt in PyTorch from the exported EMA weights.
torch.set_num_threads(args.threads)
layers = [(torch.from_numpy(load(f"W{i}.npy")), torch.from_numpy(load(f"b{i}.npy"))) for i in range(cpp["layers"])]
beta_min, beta_max, t_eps, T = cpp["beta_min"], cpp["beta_max"], cpp["t_eps"], cpp["T"]
has_scaling = os.path.exists(os.path.join(work, "shift.npy"))
shift = load("shift.npy") if has_scaling else 0.0
scale = load("scale.npy") if has_scaling else 1.0


def score(x, t):
    tc = t[:, None]
    h = torch.cat([x, tc - 0.5, torch.cos(2 * np.pi * tc), torch.sin(2 * np.pi * tc), -torch.cos(4 * np.pi * tc)], 1)
    for i, (w, b) in enumerate(layers):
        h = torch.nn.functional.linear(h, w, b)
        if i + 1 < len(layers):
            h = torch.relu(h)
    if cpp["output"] == "noise":
        B = beta_min * tc + 0.5 * (beta_max - beta_min) * tc ** 2
        h = -h / torch.sqrt(-torch.expm1(-B))
    return h


def drift_and_div(x, t):
    """Probability-flow drift and its exact divergence (one VJP per dimension), as score_sde."""
    beta = beta_min + t * (beta_max - beta_min)
    with torch.enable_grad():
        x = x.requires_grad_(True)
        drift = -0.5 * beta * x - 0.5 * beta * score(x, torch.full((x.shape[0],), t))
        div = sum(torch.autograd.grad(drift[:, i].sum(), x, retain_graph=True)[0][:, i] for i in range(x.shape[1]))
    return drift.detach(), div.detach()


points = load("points.npy")
n, d = points.shape
x0 = ((points - shift) / scale).astype(np.float32)


def ode_func(t, y):
    x = torch.from_numpy(y[: n * d].reshape(n, d).astype(np.float32))
    drift, div = drift_and_div(x, t)
    return np.concatenate([drift.numpy().reshape(-1), div.numpy()]).astype(np.float64)


start = time.perf_counter()
sol = solve_ivp(ode_func, (t_eps, T), np.concatenate([x0.reshape(-1), np.zeros(n)]), method="RK45",
                rtol=args.tol, atol=args.tol)
z, delta = sol.y[: n * d, -1].reshape(n, d), sol.y[n * d:, -1]
prior = -0.5 * (z ** 2).sum(1) - 0.5 * d * np.log(2 * np.pi)
ref_logp = prior + delta - np.log(scale).sum()
ref_seconds = time.perf_counter() - start

oracle = None
if args.oracle_tol > 0:
    run_sbgm("oracle", "pi", args.oracle_tol, "--dtype", "float64")
    oracle = load("oracle.npy")

print(f"{n} points, {d}-D, {cpp['layers']}-layer MLP, rtol = atol = {args.tol:g}, {args.threads} thread(s)")
header = f"{'':34}{'seconds':>9}{'evals':>8}{'speed-up':>10}{'mean log p':>12}{'max|-ref|':>11}"
print(header + (f"{'max|-oracle|':>14}" if oracle is not None else ""))
rows = [(f"sbgm dopri5 {c} control", runs[c]["seconds"], runs[c]["function_evals"], load(f"sbgm_{c}.npy"))
        for c in ("pi", "integral")] + [("reference scipy RK45 + PyTorch", ref_seconds, sol.nfev, ref_logp)]
for name, seconds, evals, logp in rows:
    line = (f"{name:34}{seconds:>9.2f}{evals:>8}{ref_seconds / seconds:>9.1f}x{logp.mean():>12.5f}"
            f"{np.abs(logp - ref_logp).max():>11.2e}")
    print(line + (f"{np.abs(logp - oracle).max():>14.2e}" if oracle is not None else ""))
