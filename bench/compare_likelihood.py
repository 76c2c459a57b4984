#!/usr/bin/env python3
"""Exact log-likelihoods of N points under a trained MLP: sbgm (C++) against a reference that does
what score_sde does -- PyTorch for the network, scipy's RK45 on the flattened batch, the exact
divergence by autograd -- on the same model, points and tolerances, in this one script.

    /usr/bin/python3 bench/compare_likelihood.py --checkpoint runs/ring8 [--n 10000] [--threads 1]

Prints both times, the ratio, and the largest difference between the two sets of values.
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
args = p.parse_args()

work = tempfile.mkdtemp(prefix="sbgm_loglik_")
exe = os.path.join(args.build, "bench", "sbgm_bench_loglik")
out = subprocess.run([exe, "--checkpoint", args.checkpoint, "--export", work, "--n", str(args.n),
                      "--threads", str(args.threads), "--rtol", str(args.tol), "--atol", str(args.tol)],
                     check=True, capture_output=True, text=True).stdout
cpp = json.loads(out)
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

sbgm_logp = load("sbgm_logp.npy")
print(f"{n} points, {d}-D, {cpp['layers']}-layer MLP, rtol = atol = {args.tol:g}, {args.threads} thread(s)")
print(f"{'':28}{'seconds':>10}{'evaluations':>13}{'mean log p':>13}")
print(f"{'sbgm (dopri5, C++)':28}{cpp['seconds']:>10.2f}{cpp['function_evals']:>13}{sbgm_logp.mean():>13.5f}")
print(f"{'reference (scipy RK45)':28}{ref_seconds:>10.2f}{sol.nfev:>13}{ref_logp.mean():>13.5f}")
print(f"speed-up {ref_seconds / cpp['seconds']:.1f}x; largest |difference| {np.abs(sbgm_logp - ref_logp).max():.2e} nats")
