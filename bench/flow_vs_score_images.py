"""Flow matching against score matching on Fashion-MNIST with a small CPU UNet (docs/flow_matching.md).

    python3 bench/flow_vs_score_images.py [--runs DIR] [--data DIR] [--steps 1500] [--width 16]
                                          [--test 100] [--samples 500] [--threads 2]
                                          [--objectives score,flow] [--only "PREFIX;..."] [--seeds 1]
                                          [--no-loglik]

Needs Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist, or --data). Trains (unless
already there) two UNets on the same budget — examples/images/fashion_mnist_unet.toml cut to a CPU's
size (width --width, one block per resolution, no dropout, batch 64, lr 1e-3, EMA 0.999): a score
model on the VP SDE and a flow model on the linear path — and measures:

- sample quality against network evaluations: --samples images from each sampler, energy distance
  (pixels in [0, 1]) to as many test images, beside the floor (two disjoint sets of test images),
  and a grid of the first 100 in the runs folder (OBJECTIVE_SAMPLER.png);
- log-likelihood accuracy against cost: `sbgm loglik --dequantize --bpd` of the first --test test
  images (Hutchinson, one fixed probe, the same dequantisation noise) with dopri5 at rtol = atol =
  1e-2, 1e-3, 1e-4 against a tight solve (1e-6): mean |error| in bits/dim and network evaluations
  per image.

--objectives, --only (sampler names starting with one of the prefixes) and --no-loglik run a part of
it; --seeds N draws each sampler's images with seeds 1..N and gives the energy distance's mean ± its
standard error over them.

Prints Markdown tables.
"""
import argparse
import gzip
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SBGM = os.environ.get("SBGM", os.path.join(ROOT, "build", "apps", "sbgm", "sbgm"))  # or a copy of the binary
OBJECTIVES = {"score": [], "flow": ["--objective", "flow", "--sde", "linear"]}
# (name, evaluations per sample, flags); the score model's reverse SDE at 1000 steps is the reference.
SAMPLERS = {
    "score": [("em 1000", 1000, ["--sampler", "em", "--steps", "1000"]),
              ("ode euler 20", 20, ["--sampler", "ode", "--solver", "euler", "--steps", "20"]),
              ("dpmpp2m 20", 20, ["--sampler", "dpmpp2m", "--steps", "20"]),
              ("dpmpp2m 20, lambda 0", 20, ["--sampler", "dpmpp2m", "--steps", "20", "--lambda", "0"]),
              ("unipc 20", 20, ["--sampler", "unipc", "--steps", "20"]),
              ("unipc 10", 10, ["--sampler", "unipc", "--steps", "10"]),
              ("unipc 20, lambda 0", 20, ["--sampler", "unipc", "--steps", "20", "--lambda", "0"])]
             + [(f"unipc 20, lambda 0, ode-range {r}", 20,
                 ["--sampler", "unipc", "--steps", "20", "--lambda", "0", "--ode-range", r])
                for r in ("0.3,1", "0.3,3", "1,10", "0.3,10", "3,30", "0.03,0.3")],
    "flow": [("ode heun 10", 20, ["--sampler", "ode", "--solver", "heun", "--steps", "10"]),
             ("ode euler 20", 20, ["--sampler", "ode", "--solver", "euler", "--steps", "20"]),
             ("ode euler 10", 10, ["--sampler", "ode", "--solver", "euler", "--steps", "10"]),
             ("unipc 20", 20, ["--sampler", "unipc", "--steps", "20"]),
             ("dpmpp2m 20, lambda 0", 20, ["--sampler", "dpmpp2m", "--steps", "20", "--lambda", "0"]),
             ("unipc 10", 10, ["--sampler", "unipc", "--steps", "10"])],
}


def run(args):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{r.stderr}")
    return r.stdout


def read_idx_images(path, n):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    count, rows, cols = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
    n = min(n, count)
    return np.frombuffer(raw, np.uint8, n * rows * cols, 16).reshape(n, 1, rows, cols)


def energy_distance(a, b):
    """Energy distance between the rows of a and b (flattened), from all pairwise distances."""
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)

    def mean_dist(x, y):
        d2 = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2 * x @ y.T
        return np.sqrt(np.maximum(d2, 0)).mean()

    return 2 * mean_dist(a, b) - mean_dist(a, a) - mean_dist(b, b)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--runs", default=os.path.join(ROOT, "runs", "flow_vs_score_images"))
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--test", type=int, default=100)
    p.add_argument("--samples", type=int, default=500)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--objectives", default=",".join(OBJECTIVES))
    p.add_argument("--only", default="", help="sampler names starting with one of these, separated by semicolons")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--no-loglik", action="store_true")
    a = p.parse_args()
    objectives = a.objectives.split(",")
    if not set(objectives) <= set(OBJECTIVES):
        sys.exit(f"--objectives: choose among {', '.join(OBJECTIVES)}")
    prefixes = [q.strip() for q in a.only.split(";") if q.strip()] if a.only else [""]
    train_file = os.path.join(a.data, "train-images-idx3-ubyte.gz")
    test_file = os.path.join(a.data, "t10k-images-idx3-ubyte.gz")
    for f in (train_file, test_file):
        if not os.path.exists(f):
            sys.exit(f"{f} is missing: apt install dataset-fashion-mnist, or give --data DIR")
    os.makedirs(a.runs, exist_ok=True)
    threads = ["--threads", str(a.threads)]

    ckpts = {}
    for objective in objectives:
        flags = OBJECTIVES[objective]
        out = os.path.join(a.runs, objective)
        if not os.path.exists(os.path.join(out, "checkpoint.safetensors")):
            run([SBGM, "train", "--config", os.path.join(ROOT, "examples", "images", "fashion_mnist_unet.toml"),
                 "--data", train_file, "--out", out, "--model.width", str(a.width), "--model.depth", "1",
                 "--model.dropout", "0", "--steps", str(a.steps), "--batch-size", "64", "--lr", "1e-3",
                 "--train.warmup_steps", "100", "--train.ema_decay", "0.999",
                 "--train.checkpoint_every", str(a.steps), "--train.eval_every", "0"] + threads + flags)
        ckpts[objective] = out

    # Sample quality: images in [0, 1] against test images 5000.. (the likelihood's are the first ones).
    test = read_idx_images(test_file, 5000 + 2 * a.samples)[5000:].astype(np.float64) / 255
    reference, other = test[:a.samples], test[a.samples:]
    print(f"\n### Samples: energy distance to {a.samples} test images (pixels in [0, 1])\n")
    print("| model | sampler | evaluations | energy distance |\n|---|---|---|---|")
    print(f"| test images (floor) | – | – | {energy_distance(other, reference):.3f} |", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for objective, ckpt in ckpts.items():
            for name, evals, flags in SAMPLERS[objective]:
                if not any(name.startswith(q) for q in prefixes):
                    continue
                distances = []
                for seed in range(1, a.seeds + 1):
                    out = os.path.join(tmp, "samples.npy")
                    png = os.path.join(a.runs, f"{objective}_{re.sub('[^a-z0-9]+', '_', name)}.png")
                    run([SBGM, "sample", "--checkpoint", ckpt, "--n", str(a.samples), "--seed", str(seed),
                         "--out", out] + (["--png", png] if seed == 1 else []) + threads + flags)
                    x = np.clip(np.load(out).astype(np.float64), 0, 255) / 255  # samples come back as pixel levels
                    distances.append(energy_distance(x, reference))
                spread = f" ± {np.std(distances, ddof=1) / np.sqrt(len(distances)):.3f}" if len(distances) > 1 else ""
                print(f"| {objective} | {name} | {evals} | {np.mean(distances):.3f}{spread} |", flush=True)
                print(f"{objective} {name}: seeds 1..{a.seeds}: {' '.join(f'{d:.4f}' for d in distances)}", file=sys.stderr)
        if a.no_loglik:
            return

        # Likelihoods: the first --test test images as levels 0..255.
        points = os.path.join(tmp, "test.npy")
        np.save(points, read_idx_images(test_file, a.test).astype(np.float32))

        def loglik(ckpt, tol):
            out = os.path.join(tmp, "bpd.npy")
            text = run([SBGM, "loglik", "--checkpoint", ckpt, "--data", points, "--out", out, "--dequantize", "--bpd",
                        "--divergence", "hutchinson", "--seed", "0", "--rtol", str(tol), "--atol", str(tol)] + threads)
            evals = float(re.search(r"([0-9.]+) function evaluations per point", text).group(1))
            return np.load(out), evals

        print(f"\n### Bits/dim of {a.test} test images against a tight solve (1e-6)\n")
        print("| model | rtol = atol | bits/dim | mean abs error (bits/dim) | evaluations per image |\n|---|---|---|---|---|")
        for objective, ckpt in ckpts.items():
            tight, tight_evals = loglik(ckpt, 1e-6)
            print(f"| {objective} | 1e-6 | {tight.mean():.3f} | – | {tight_evals:.0f} |", flush=True)
            for tol in (1e-2, 1e-3, 1e-4):
                bpd, evals = loglik(ckpt, tol)
                print(f"| {objective} | {tol:g} | {bpd.mean():.3f} | {np.abs(bpd - tight).mean():.2e} | {evals:.0f} |",
                      flush=True)


if __name__ == "__main__":
    main()
