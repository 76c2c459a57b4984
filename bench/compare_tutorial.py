#!/usr/bin/env python3
"""Runs the tutorial benchmark in sbgm (C++) and in the PyTorch reference on this machine, with
the same settings, and prints the ratios. Usage:

    /usr/bin/python3 bench/compare_tutorial.py [--build build] [--train-steps 3000] [--samples 5000] [--sample-steps 1000]
"""
import argparse
import json
import os
import subprocess
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_tutorial as ref  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "build"))
p.add_argument("--train-steps", type=int, default=3000)
p.add_argument("--samples", type=int, default=5000)
p.add_argument("--sample-steps", type=int, default=1000)
args = p.parse_args()

exe = os.path.join(args.build, "bench", "sbgm_bench_tutorial")
out = subprocess.run([exe, "--train-steps", str(args.train_steps), "--train-threads", "1",
                      "--samples", str(args.samples), "--sample-steps", str(args.sample_steps)],
                     check=True, capture_output=True, text=True).stdout
cpp = json.loads(out)

torch.manual_seed(0)
default_threads = torch.get_num_threads()
torch.set_num_threads(1)
model = ref.make_model()
py_rate, py_loss = ref.train(model, args.train_steps)
torch.set_num_threads(default_threads)
py_sample, x = ref.sample(model, args.samples, args.sample_steps)
torch.set_num_threads(os.cpu_count())
py_sample_all, _ = ref.sample(model, args.samples, args.sample_steps)

print(f"torch {torch.__version__}, {os.cpu_count()} cores; PyTorch default threads {default_threads}")
print(f"{'':34}{'sbgm (C++)':>14}{'PyTorch':>14}{'ratio':>9}")
print(f"{'train steps/s (1 thread, batch 8)':34}{cpp['train_steps_per_s']:>14.0f}{py_rate:>14.0f}"
      f"{cpp['train_steps_per_s'] / py_rate:>8.2f}x")
print(f"{'EM sampling s (' + str(args.samples) + ' x ' + str(args.sample_steps) + ')':34}"
      f"{cpp['sample_seconds']:>14.2f}{py_sample:>14.2f}{py_sample / cpp['sample_seconds']:>8.2f}x")
print(f"{'EM sampling, PyTorch on all cores':34}{cpp['sample_seconds']:>14.2f}{py_sample_all:>14.2f}"
      f"{py_sample_all / cpp['sample_seconds']:>8.2f}x")
print(f"(final training loss: sbgm {cpp['final_loss']:.3f}, PyTorch {py_loss:.3f}; "
      f"sampler threads: sbgm {cpp['sample_threads']}, PyTorch {default_threads})")
