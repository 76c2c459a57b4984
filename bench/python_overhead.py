#!/usr/bin/env python3
"""The Python API's overhead against the CLI on the same work (issue 22): the tutorial problem
(examples/tutorial.toml, shortened to --steps) trained from the same rows, then 10,000 samples,
each way --repeats times in alternation; prints the median wall times and their ratios.

    PYTHONPATH=build/python python3 bench/python_overhead.py [--steps 10000] [--repeats 3]

The CLI's times include its process start and (for sampling) loading the checkpoint; the Python
times include the same loading (sbgm.load) but no interpreter start."""

import argparse
import os
import statistics
import subprocess
import tempfile
import time
import tomllib

import numpy as np

import sbgm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def flat(toml):
    return {f"{section}.{key}": value for section, keys in toml.items() for key, value in keys.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cli", default=os.path.join(ROOT, "build", "apps", "sbgm", "sbgm"))
    args = ap.parse_args()
    sbgm.set_threads(args.threads)

    with open(os.path.join(ROOT, "examples", "tutorial.toml"), "rb") as f:
        config = flat(tomllib.load(f))
    config.pop("data.dataset")
    config.update({"train.steps": args.steps, "train.checkpoint_every": 0, "run.threads": args.threads})
    angles = 2 * np.pi * np.arange(8) / 8
    rows = np.tile(np.stack([np.cos(angles), np.sin(angles)], 1), (2500, 1))  # circle8's points

    times = {"cli train": [], "python train": [], "cli sample": [], "python sample": []}
    with tempfile.TemporaryDirectory() as tmp:
        np.save(os.path.join(tmp, "rows.npy"), rows)
        for r in range(args.repeats):
            cli_run, py_run = os.path.join(tmp, f"cli{r}"), os.path.join(tmp, f"py{r}")
            start = time.perf_counter()
            subprocess.run([args.cli, "train", "--config", os.path.join(ROOT, "examples", "tutorial.toml"),
                            "--data", os.path.join(tmp, "rows.npy"), "--steps", str(args.steps),
                            "--train.checkpoint_every", "0", "--threads", str(args.threads), "--out", cli_run],
                           check=True, capture_output=True)
            times["cli train"].append(time.perf_counter() - start)
            start = time.perf_counter()
            sbgm.train(rows, out=py_run, config=config, progress=False)
            times["python train"].append(time.perf_counter() - start)
            start = time.perf_counter()
            subprocess.run([args.cli, "sample", "--checkpoint", cli_run, "--n", str(args.samples), "--seed", "1",
                            "--threads", str(args.threads), "--out", os.path.join(tmp, "s.npy")],
                           check=True, capture_output=True)
            times["cli sample"].append(time.perf_counter() - start)
            start = time.perf_counter()
            sbgm.load(py_run).sample(args.samples, seed=1, progress=False)
            times["python sample"].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in times.items():
        print(f"{k:14s} median {med[k]:7.2f} s  ({', '.join(f'{x:.2f}' for x in v)})")
    for what in ("train", "sample"):
        print(f"{what}: python / cli = {med['python ' + what] / med['cli ' + what]:.3f}")


if __name__ == "__main__":
    main()
