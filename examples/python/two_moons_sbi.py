#!/usr/bin/env python3
"""Simulation-based inference from Python, end to end, on sbibm's two-moons task:
simulate pairs from the prior, fit p(theta | x), sample the posterior at an observation, check it
against the exact posterior (C2ST and log-densities), and plot both.

    PYTHONPATH=build/python python3 examples/python/two_moons_sbi.py [--simulations 10000] [--out DIR]

With the default 10,000 simulations the run takes about two minutes on two cores; the test
suite runs it with --simulations 2000 --steps 3000."""

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sbi"))
import sbibm  # noqa: E402  (the benchmark's simulators and exact posteriors, examples/sbi)

import sbgm  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--simulations", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=0, help="training steps (0: the run chooses)")
    ap.add_argument("--width", type=int, default=0, help="the network's width (0: the library's)")
    ap.add_argument("--depth", type=int, default=0, help="the network's hidden layers (0: the library's)")
    ap.add_argument("--out", default="runs/python_two_moons")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    task = sbibm.TASKS["two_moons"]
    rng = np.random.default_rng(args.seed)
    theta = task.prior(args.simulations, rng)
    x = task.simulate(theta, rng)

    sizes = {"train.steps": args.steps, "model.width": args.width, "model.depth": args.depth}
    config = {key: value for key, value in sizes.items() if value}
    start = time.time()
    est = sbgm.PosteriorEstimator(os.path.join(args.out, "run"), config=config, seed=args.seed).fit(theta, x)
    trained = time.time() - start

    x_o = task.simulate(np.array([[0.2, 0.1]]), np.random.default_rng(1))[0]
    start = time.time()
    samples = est.sample(5000, x=x_o, progress=False)
    sampled = time.time() - start
    exact = task.posterior(x_o, 5000, np.random.default_rng(2))

    score = sbibm.c2st(exact, samples, fast=True)
    logp = est.log_prob(exact[:200], x=x_o, progress=False)
    exact_logp = task.log_posterior(exact[:200], x_o)
    print(f"two moons, {args.simulations} simulations: C2ST {score:.3f} (0.5: indistinguishable from the exact "
          f"posterior); mean log p(theta | x_o) of exact draws {logp.mean():.2f} (exact {exact_logp.mean():.2f}); "
          f"train {trained:.0f} s, 5000 samples {sampled:.1f} s")
    np.save(os.path.join(args.out, "posterior.npy"), samples)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(*exact.T, s=2, c="0.6", alpha=0.5, label="exact posterior")
    ax.scatter(*samples.T, s=2, c="tab:blue", alpha=0.4, label="sbgm")
    ax.set(xlabel="theta_1", ylabel="theta_2", title=f"two moons, C2ST {score:.3f}")
    ax.legend(loc="upper right", markerscale=5)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "posterior.png"), dpi=120)
    print("wrote", os.path.join(args.out, "posterior.npy"), "and posterior.png")
    return score


if __name__ == "__main__":
    main()
