#!/usr/bin/env python3
"""Data-parallel scaling of `sbgm train` on this machine's cores.

For each network, training throughput (samples/s) of
  1 process x 1 thread   (the baseline),
  2 processes x 1 thread (`--nproc 2`: Gloo all-reduce on loopback), and
  1 process x 2 threads  (intra-op parallelism, the alternative use of the same cores).
Each throughput is (S2 - S1) * batch / (t(S2) - t(S1)) from two runs of S1 and S2 steps, so
start-up, data loading and the final sampling cancel. Scaling efficiency = throughput of 2
processes / (2 x the baseline).

    /usr/bin/python3 bench/data_parallel_scaling.py [--sbgm build/apps/sbgm/sbgm] [--repeats 1]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

FMNIST = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"


def workloads(tmp):
    if os.path.exists(FMNIST):
        images, what = FMNIST, "Fashion-MNIST"
    else:
        images, what = os.path.join(tmp, "images.npy"), "random 28x28 images"
        np.save(images, np.random.default_rng(0).integers(0, 256, (2048, 28, 28), dtype=np.uint8))
    return [
        ("MLP 256x4, moons, batch 512", ["--dataset", "moons", "--model.width", "256", "--model.depth", "4",
                                         "--batch-size", "512"], 512, 50, 650),
        (f"UNet 28x28 width 32 ({what}), batch 64",
         ["--data", images, "--config", "examples/images/fashion_mnist_unet.toml", "--model.width", "32",
          "--model.depth", "1", "--model.dropout", "0", "--batch-size", "64"], 64, 4, 34),
    ]


def seconds(sbgm, args, steps, tmp):
    out = os.path.join(tmp, "run")
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sbgm, "train", *args, "--steps", str(steps), "--out", out, "--sample.n", "2", "--sample.steps", "1",
           "--train.eval_every", "0", "--train.checkpoint_every", "0"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def throughput(sbgm, args, batch, s1, s2, tmp, repeats):
    best = 0.0
    for _ in range(repeats):
        t1, t2 = seconds(sbgm, args, s1, tmp), seconds(sbgm, args, s2, tmp)
        best = max(best, (s2 - s1) * batch / (t2 - t1))
    return best


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sbgm", default="build/apps/sbgm/sbgm")
    p.add_argument("--repeats", type=int, default=1, help="best of this many measurements per cell")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print("| network | 1 proc x 1 thread | 2 proc x 1 thread | efficiency | 1 proc x 2 threads |")
        print("|---|---|---|---|---|")
        for name, args, batch, s1, s2 in workloads(tmp):
            base = throughput(a.sbgm, args + ["--threads", "1"], batch, s1, s2, tmp, a.repeats)
            dp = throughput(a.sbgm, args + ["--threads", "1", "--nproc", "2"], batch, s1, s2, tmp, a.repeats)
            threads = throughput(a.sbgm, args + ["--threads", "2"], batch, s1, s2, tmp, a.repeats)
            print(f"| {name} | {base:.0f} samples/s | {dp:.0f} samples/s | **{dp / (2 * base):.0%}** | "
                  f"{threads:.0f} samples/s |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
