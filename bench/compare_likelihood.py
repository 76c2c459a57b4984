#!/usr/bin/env python3
"""Exact log-likelihoods of N points under a trained MLP: sbgm (C++) against a reference that does
what score_sde does -- PyTorch for the network, scipy's RK45 on the flattened batch, the exact
divergence by autograd -- on the same model, points and tolerances, in this one script.

    /usr/bin/python3 bench/compare_likelihood.py --checkpoint runs/ring8 [--n 10000] [--threads 1]
        [--oracle-tol 1e-8 | --oracle FILE.npy] [--bosh3-tols 1e-4,5e-5,3e-5]
        [--row-runs dopri5:1e-5,dopri5:1e-4,bosh3:1e-4]

sbgm runs Dormand-Prince at the reference's tolerance with its default PI step control and with
the integral control that is scipy's RK45 step for step, Bogacki-Shampine 3(2) at each of
--bosh3-tols, and each solver:tolerance of --row-runs with per-row error control. Prints the
times, the network evaluations per point, the ratios and the largest differences to the
reference; with an oracle (a tight float64 per-row solve by sbgm: --oracle-tol runs it, slow for
a ReLU network, whose kinks make tight tolerances expensive; --oracle loads one saved by
--save-oracle) also each one's error against it, and the speed-up of the fastest sbgm run that is
at least as accurate as the reference in the largest, the mean and the 99th-percentile error.
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
p.add_argument("--oracle", default="", help="log p of the same points from an earlier --oracle-tol run")
p.add_argument("--save-oracle", default="", help="where to keep the --oracle-tol solve")
p.add_argument("--bosh3-tols", default="1e-4,5e-5,3e-5")
p.add_argument("--row-runs", default="dopri5:1e-5,dopri5:1e-4,bosh3:1e-4",
               help="solver:tol,... run with per-row error control (--error-control row)")
args = p.parse_args()

work = tempfile.mkdtemp(prefix="sbgm_loglik_")
exe = os.path.join(args.build, "bench", "sbgm_bench_loglik")


def run_sbgm(name, solver, controller, tol=args.tol, *extra):
    out = subprocess.run([exe, "--checkpoint", args.checkpoint, "--export", work, "--n", str(args.n), "--threads",
                          str(args.threads), "--rtol", str(tol), "--atol", str(tol), "--solver", solver,
                          "--controller", controller, "--name", name, *extra], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out)


# (label, name of its .npy, its JSON)
runs = [(f"sbgm dopri5 {c} {args.tol:g}", f"dopri5_{c}", run_sbgm(f"dopri5_{c}", "dopri5", c)) for c in ("pi", "integral")]
for tol in (float(v) for v in args.bosh3_tols.split(",") if v):
    runs.append((f"sbgm bosh3 pi {tol:g}", f"bosh3_{tol:g}", run_sbgm(f"bosh3_{tol:g}", "bosh3", "pi", tol)))
for spec in (v for v in args.row_runs.split(",") if v):
    solver, tol = spec.split(":")
    name = f"{solver}_row_{float(tol):g}"
    runs.append((f"sbgm {solver} per row {float(tol):g}", name,
                 run_sbgm(name, solver, "pi", float(tol), "--error-control", "row")))
cpp = runs[0][2]
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
            h = torch.relu(h) if cpp["activation"] == "relu" else torch.nn.functional.silu(h)
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
if args.oracle:
    oracle = np.load(args.oracle)
    if oracle.shape != (n,):
        raise SystemExit(f"--oracle holds {oracle.shape}, not the {n} values of these points")
elif args.oracle_tol > 0:
    run_sbgm("oracle", "dopri5", "pi", args.oracle_tol, "--dtype", "float64", "--error-control", "row")
    oracle = load("oracle.npy")
    if args.save_oracle:
        np.save(args.save_oracle, oracle)


def errors(logp):
    e = np.abs(logp - oracle)
    return np.array([e.max(), e.mean(), np.quantile(e, 0.99)])


print(f"{n} points, {d}-D, {cpp['layers']}-layer {cpp['activation']} MLP, {args.threads} thread(s)")
header = f"{'':32}{'seconds':>9}{'evals':>8}{'speed-up':>10}{'mean log p':>12}{'max|-ref|':>11}"
print(header + (f"{'err: max':>11}{'mean':>10}{'p99':>10}" if oracle is not None else ""))
# evals: network evaluations per point (a batch solve evaluates every point at every call)
rows = [(label, r["seconds"], round(r["evals_per_point"]), load(f"{name}.npy")) for label, name, r in runs]
rows.append((f"reference RK45 {args.tol:g}", ref_seconds, sol.nfev, ref_logp))
for label, seconds, evals, logp in rows:
    line = (f"{label:32}{seconds:>9.2f}{evals:>8}{ref_seconds / seconds:>9.1f}x{logp.mean():>12.5f}"
            f"{np.abs(logp - ref_logp).max():>11.2e}")
    print(line + ("".join(f"{v:>10.2e}" for v in errors(logp)) if oracle is not None else ""))
if oracle is not None:
    # The one comparison that does not depend on how a tolerance maps to an error: the fastest
    # sbgm run whose errors are all no larger than the reference's.
    ref_err = errors(ref_logp)
    fit = [(seconds, label) for label, seconds, _, logp in rows[:-1] if (errors(logp) <= ref_err).all()]
    if fit:
        seconds, label = min(fit)
        print(f"at the reference's accuracy or better: {label}, {ref_seconds / seconds:.1f}x faster")
    else:
        print("no sbgm run was as accurate as the reference in every statistic")
