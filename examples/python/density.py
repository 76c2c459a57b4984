#!/usr/bin/env python3
"""Unconditional density estimation from Python: fit a diffusion model to 2-D data (a ring of
eight Gaussians), draw samples, and map log p(x) through the probability-flow ODE against the
exact density of the mixture the data came from.

    PYTHONPATH=build/python python3 examples/python/density.py [--steps 20000] [--out DIR]"""

import argparse
import os

import numpy as np
from scipy.stats import multivariate_normal

import sbgm


def ring(k=8, radius=4.0, sd=0.5):
    angles = 2 * np.pi * np.arange(k) / k
    means = radius * np.stack([np.cos(angles), np.sin(angles)], 1)
    return np.full(k, 1.0 / k), means, np.stack([sd ** 2 * np.eye(2)] * k)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=0, help="training steps (0: the run chooses)")
    ap.add_argument("--width", type=int, default=0, help="the network's width (0: the library's)")
    ap.add_argument("--depth", type=int, default=0, help="the network's hidden layers (0: the library's)")
    ap.add_argument("--samples", type=int, default=4000, help="samples drawn for the picture")
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--grid", type=int, default=60, help="points per side of the density map")
    ap.add_argument("--out", default="runs/python_density")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    weights, means, covs = ring()
    rng = np.random.default_rng(0)
    component = rng.choice(len(weights), size=args.rows, p=weights)
    data = means[component] + rng.normal(size=(args.rows, 2)) * np.sqrt(covs[0, 0, 0])

    sizes = {"train.steps": args.steps, "model.width": args.width, "model.depth": args.depth}
    config = {key: value for key, value in sizes.items() if value}
    model = sbgm.train(data, out=os.path.join(args.out, "run"), config=config)
    samples = model.sample(args.samples, progress=False)

    lin = np.linspace(-6.5, 6.5, args.grid)
    grid = np.stack(np.meshgrid(lin, lin), -1).reshape(-1, 2)
    logp = model.log_prob(grid, progress=False)
    exact = np.log(sum(w * multivariate_normal(m, c).pdf(grid) for w, m, c in zip(weights, means, covs)))
    test = data[:500]
    fit = model.log_prob(test, progress=False).mean()
    truth = np.log(sum(w * multivariate_normal(m, c).pdf(test) for w, m, c in zip(weights, means, covs))).mean()
    print(f"ring of 8: mean log p of 500 data rows {fit:.3f} nats (exact {truth:.3f}); {model}")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    axes[0].scatter(*samples.T, s=1, alpha=0.4)
    axes[0].set_title("samples")
    for ax, z, title in [(axes[1], logp, "log p, sbgm (ODE)"), (axes[2], exact, "log p, exact")]:
        im = ax.imshow(np.maximum(z, -12).reshape(args.grid, args.grid), origin="lower",
                       extent=[lin[0], lin[-1], lin[0], lin[-1]], vmin=-12, vmax=0)
        ax.set_title(title)
    fig.colorbar(im, ax=axes[1:], shrink=0.8)
    fig.savefig(os.path.join(args.out, "density.png"), dpi=100)
    print("wrote", os.path.join(args.out, "density.png"))
    return fit, truth


if __name__ == "__main__":
    main()
