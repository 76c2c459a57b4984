#!/usr/bin/env python3
"""sbgm's speed on a busy machine: the CLI's training and sampling, each timed alone and beside a
process that keeps one core busy (a CPU hog), with the default threads (one per core), with
OpenMP's passive waiting (OMP_WAIT_POLICY=PASSIVE) and with one thread, and the PyTorch
tutorial loop (bench/reference_tutorial.py, when python3-torch is installed) the same way. The
target (issue 25): under contention the default at least 0.9x as fast as one thread, nothing
lost uncontended. Usage:

    /usr/bin/python3 bench/contention.py [--build build] [--repeats 3]

Prints one row per case: median seconds over the repeats (min-max), and the ratios.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

p = argparse.ArgumentParser()
p.add_argument("--build", default=os.path.join(HERE, "..", "build"))
p.add_argument("--repeats", type=int, default=3)
p.add_argument("--train-steps", type=int, default=300)
args = p.parse_args()
sbgm = os.path.join(args.build, "apps", "sbgm", "sbgm")
work = tempfile.mkdtemp(prefix="sbgm_contention_")
run = os.path.join(work, "run")

POLICIES = ("default", "passive", "one thread")


def env_for(policy):
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    env.pop("OMP_NUM_THREADS", None)
    if policy == "passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    return env


def threads_for(policy):
    return "1" if policy == "one thread" else "0"


def timed(cmd, env):
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def train_cmd(policy):
    return [sbgm, "train", "--dataset", "moons", "--out", run, "--steps", str(args.train_steps),
            "--threads", threads_for(policy),
            "--sample.n", "10", "--sample.steps", "2", "--train.log_every", "100"]


def sample_cmd(policy):
    return [sbgm, "sample", "--checkpoint", run, "--n", "5000", "--steps", "200", "--out",
            os.path.join(work, "s.npy"), "--threads", threads_for(policy)]


def torch_cmd(policy):
    threads = "1" if policy == "one thread" else "0"
    code = ("import sys, torch; sys.path.insert(0, %r); import reference_tutorial as r; torch.manual_seed(0);\n"
            "n = int(%r)\n"
            "torch.set_num_threads(n) if n else None\n"
            "m = r.make_model(); r.train(m, 300, warmup=0); r.sample(m, 5000, 200)") % (HERE, threads)
    return [sys.executable, "-c", code]


def measure(make_cmd, policy):
    return [timed(make_cmd(policy), env_for(policy)) for _ in range(args.repeats)]


def hog():
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


subprocess.run(train_cmd("one thread"), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
have_torch = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True).returncode == 0
if not have_torch:
    print("(python3-torch is not installed: the PyTorch rows are left out; scripts/setup.sh installs it)")
CASES = [("train", train_cmd), ("sample", sample_cmd)] + ([("pytorch tutorial", torch_cmd)] if have_torch else [])
results = {}
for contended in (False, True):
    h = hog() if contended else None
    try:
        time.sleep(0.5 if h else 0)
        for name, make in CASES:
            for policy in POLICIES:
                results[(contended, name, policy)] = measure(make, policy)
    finally:
        if h:
            h.kill()
            h.wait()

print(f"{'case':44s} {'median s':>9s} {'min-max':>13s}")
for (contended, name, policy), ts in results.items():
    label = f"{name}, {policy}{', busy core' if contended else ''}"
    print(f"{label:44s} {statistics.median(ts):9.2f} {min(ts):6.2f}-{max(ts):<6.2f}")
print()
for name, _ in CASES:
    for contended in (False, True):
        one = statistics.median(results[(contended, name, "one thread")])
        for policy in ("default", "passive"):
            if (contended, name, policy) in results:
                ratio = one / statistics.median(results[(contended, name, policy)])
                print(f"{name}{', busy core' if contended else ''}: {policy} is {ratio:.2f}x as fast as one thread")
    d = statistics.median(results[(False, name, "default")])
    print(f"{name}, uncontended: passive / default time = "
          f"{statistics.median(results[(False, name, 'passive')]) / d:.2f}")
