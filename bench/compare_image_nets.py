#!/usr/bin/env python3
"""Forward+backward throughput (images/s) of sbgm's UNet, DiT and MLP-Mixer against the same
networks in PyTorch (bench/reference_image_nets.py), same machine, same threads, one script:

    /usr/bin/python3 bench/compare_image_nets.py [--build build] [--threads 2] [--iters 10]
                                                 [--device cuda] [--batch 256] [--precision bfloat16]

The loss is the mean squared output, so a step is one forward and one backward pass without the
optimiser. Parameter counts are checked equal, so the networks are the same size layer for layer.
Both sides read each step's loss back, so on a GPU a step is timed to its end. --batch replaces
every case's batch size (a GPU needs far larger batches than the CPU's defaults to be busy);
--precision bfloat16 runs both under bfloat16 autocast.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_image_nets as ref  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "build"))
p.add_argument("--threads", type=int, default=os.cpu_count())
p.add_argument("--iters", type=int, default=10)
p.add_argument("--device", default="cpu")
p.add_argument("--batch", type=int, default=0, help="every case's batch size (0: the case's own)")
p.add_argument("--precision", default="float32", choices=["float32", "bfloat16"])
args = p.parse_args()

# (name, shape, batch, sbgm config keys, PyTorch constructor)
CASES = [
    ("unet, Fashion-MNIST size", (1, 28, 28), 32,
     {"type": "unet", "width": 32, "depth": 1, "channel_mult": "1,2,2", "attention_res": "7", "heads": 4},
     lambda s: ref.UNet(s, 32, 1, [1, 2, 2], [7], 4)),
    ("dit, Fashion-MNIST size", (1, 28, 28), 32,
     {"type": "dit", "width": 128, "depth": 4, "heads": 4, "patch_size": 2, "mlp_ratio": 4},
     lambda s: ref.PatchNet(s, 128, 4, 4, 2, 4, 64, True)),
    ("mixer, Fashion-MNIST size", (1, 28, 28), 32,
     {"type": "mixer", "width": 128, "depth": 4, "patch_size": 4, "mlp_ratio": 4, "token_mlp_dim": 64},
     lambda s: ref.PatchNet(s, 128, 4, 4, 4, 4, 64, False)),
    ("unet, CIFAR-10 size", (3, 32, 32), 16,
     {"type": "unet", "width": 32, "depth": 1, "channel_mult": "1,2,2", "attention_res": "8", "heads": 4},
     lambda s: ref.UNet(s, 32, 1, [1, 2, 2], [8], 4)),
]


def torch_rate(model, shape, batch):
    x, t = torch.randn(batch, *shape, device=args.device), torch.rand(batch, device=args.device)
    model.to(args.device)
    dtype = torch.bfloat16 if args.precision == "bfloat16" else torch.float32

    def step():
        model.zero_grad(set_to_none=False)
        with torch.autocast(torch.device(args.device).type, dtype=dtype, enabled=args.precision != "float32"):
            out = model(x, t).float()
        loss = out.square().mean()
        loss.backward()
        return loss.item()

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(args.iters):
        step()
    return batch * args.iters / (time.perf_counter() - start)


torch.set_num_threads(args.threads)
exe = os.path.join(args.build, "bench", "sbgm_bench_image_nets")
print(f"torch {torch.__version__}, {args.device}, {args.precision}, {args.threads} threads, "
      f"{args.iters} timed steps after 3 warm-up steps")
print(f"{'network (batch)':34}{'parameters':>12}{'sbgm img/s':>12}{'PyTorch img/s':>15}{'ratio':>8}")
for name, shape, batch, keys, make in CASES:
    batch = args.batch or batch
    cmd = [exe, "--shape", ",".join(map(str, shape)), "--batch", str(batch), "--iters", str(args.iters),
           "--threads", str(args.threads), "--device", args.device, "--precision", args.precision]
    for k, v in keys.items():
        cmd += [f"--model.{k}", str(v)]
    cpp = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    torch.manual_seed(0)
    model = make(shape)
    params = sum(q.numel() for q in model.parameters())
    if params != cpp["parameters"]:
        sys.exit(f"{name}: parameter counts differ (sbgm {cpp['parameters']}, PyTorch {params})")
    rate = torch_rate(model, shape, batch)
    print(f"{name + f' ({batch})':34}{params:>12,}{cpp['images_per_s']:>12.1f}{rate:>15.1f}{cpp['images_per_s'] / rate:>7.2f}x")
