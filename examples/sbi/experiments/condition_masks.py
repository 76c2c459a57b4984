"""Experiment (docs/sbi.md, "A joint model of θ and x"): does training one score network on random
condition masks over [θ, x] — the Simformer's joint training (Gloeckler et al. 2024), which GenSBI's
joint transformers follow — give a better posterior than training it on the posterior's mask alone?

Both arms share everything but the masks drawn in training: the VE path of sbgm's conditional
defaults (σ from 0.01 to 50, t uniform), θ and x standardised, noise prediction with the unit input
scaling on the diffused features, Adam at 10⁻³ with 100 warm-up steps and a cosine decay, EMA
0.999, a tenth of the pairs held out and the EMA weights of the best held-out posterior loss kept,
and the reverse SDE with 200 Euler–Maruyama steps for 10,000 draws per observation, scored with
sbibm's C2ST (early stopping: `--fast-c2st` of run.sh). A prototype in PyTorch so that the question
is answered before the trainer learns per-row masks; sbgm itself does not use this file.

    python3 condition_masks.py RUN_DIR {posterior,joint} [--net mlp|transformer] [--steps N] [--obs K]

RUN_DIR is a folder `examples/sbi/run.sh` wrote (theta.npy, x.npy, observations.npy, reference.npy).
The joint arm draws, per row, the posterior's mask (θ diffused, x given) with probability 0.5, the
likelihood's (x diffused) 0.2, the joint's (all diffused) 0.1 and a random half of the features 0.2.
Prints one JSON line: the held-out loss, the C2ST per observation and their mean, the times.
"""
import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import sbibm  # noqa: E402

SIGMA_MIN, SIGMA_MAX, T_EPS = 0.01, 50.0, 1e-5
MASK_PROBABILITIES = (0.5, 0.2, 0.1, 0.2)  # posterior, likelihood, joint, random half


def sigma(t):
    return SIGMA_MIN * (SIGMA_MAX / SIGMA_MIN) ** t


def input_scale(mask, t, values):
    """1 / sqrt(1 + σ²) on the diffused features (standardised data), 1 on the given ones."""
    return torch.where(mask > 0, 1 / torch.sqrt(1 + sigma(t)[:, None] ** 2), torch.ones_like(values))


class FourierTime(torch.nn.Module):
    """The tutorial's Gaussian Fourier features of t (scale 16), 32 of them."""

    def __init__(self):
        super().__init__()
        self.register_buffer("w", torch.randn(16) * 16)

    def forward(self, t):
        e = t[:, None] * self.w[None] * 2 * math.pi
        return torch.cat([torch.sin(e), torch.cos(e)], 1)


class MaskedMLP(torch.nn.Module):
    """sbgm's default MLP (4 × 256, ReLU) over the scaled values, the mask and the time features."""

    def __init__(self, dim, width=256, depth=4):
        super().__init__()
        self.time = FourierTime()
        layers, k = [], 2 * dim + 32
        for _ in range(depth):
            layers += [torch.nn.Linear(k, width), torch.nn.ReLU()]
            k = width
        self.body = torch.nn.Sequential(*layers, torch.nn.Linear(k, dim))

    def forward(self, values, mask, t):
        return self.body(torch.cat([input_scale(mask, t, values) * values, mask, self.time(t)], 1))


class MaskedTransformer(torch.nn.Module):
    """A token per feature (its value times a learnt vector, plus vectors naming the feature and
    whether it is given), the time added to every token, pre-norm encoder blocks, one output per
    token: sbgm's `model.type = transformer` at 2 × 32 with the Simformer's condition token."""

    def __init__(self, dim, width=32, depth=2, heads=4):
        super().__init__()
        self.time = FourierTime()
        self.time_mlp = torch.nn.Sequential(torch.nn.Linear(32, width), torch.nn.SiLU(), torch.nn.Linear(width, width))
        self.value = torch.nn.Parameter(torch.randn(dim, width) / math.sqrt(width))
        self.name = torch.nn.Parameter(torch.randn(dim, width) * 0.02)
        self.given = torch.nn.Parameter(torch.randn(2, width) * 0.02)
        block = torch.nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, activation="gelu",
                                                 batch_first=True, norm_first=True)
        self.blocks = torch.nn.TransformerEncoder(block, depth)
        self.norm, self.out = torch.nn.LayerNorm(width), torch.nn.Linear(width, 1)

    def forward(self, values, mask, t):
        scaled = input_scale(mask, t, values) * values
        h = scaled[..., None] * self.value + self.name + self.given[mask.long()] + self.time_mlp(self.time(t))[:, None]
        return self.out(self.norm(self.blocks(h)))[..., 0]


def draw_masks(arm, rows, posterior_mask):
    if arm == "posterior":
        return posterior_mask.expand(rows, -1).clone()
    dim = posterior_mask.numel()
    half = (torch.rand(rows, dim) < 0.5).float()
    half[half.sum(1) == 0, 0] = 1  # at least one feature diffused
    choice = torch.multinomial(torch.tensor(MASK_PROBABILITIES), rows, replacement=True)[:, None]
    return torch.where(choice == 0, posterior_mask,
                       torch.where(choice == 1, 1 - posterior_mask, torch.where(choice == 2, torch.ones(dim), half)))


def masked_loss(net, x0, mask, t, z):
    """The noise-prediction loss over the diffused features; the given ones enter clean."""
    values = torch.where(mask > 0, x0 + sigma(t)[:, None] * z, x0)
    return (((net(values, mask, t) - z) * mask) ** 2).sum(1).mean()


@torch.no_grad()
def sample_posterior(net, x_given, dim_theta, n, steps=200):
    """The reverse SDE dθ = -g² s dt + g dw̄ (g² = dσ²/dt) with Euler–Maruyama, then one denoising."""
    dim = dim_theta + x_given.numel()
    mask = torch.cat([torch.ones(dim_theta), torch.zeros(dim - dim_theta)]).expand(n, -1)
    x = x_given.expand(n, -1)
    theta = torch.randn(n, dim_theta) * math.sqrt(SIGMA_MAX ** 2 + 1)
    times = torch.linspace(1, T_EPS, steps + 1)

    def noise(th, t):
        return net(torch.cat([th, x], 1), mask, t.expand(n))[:, :dim_theta]

    for i in range(steps):
        t, dt = times[i], times[i] - times[i + 1]
        g2 = sigma(t) ** 2 * 2 * math.log(SIGMA_MAX / SIGMA_MIN)
        theta = theta + g2 * dt * noise(theta, t) / -sigma(t) + torch.sqrt(g2 * dt) * torch.randn(n, dim_theta)
    return theta - sigma(times[-1]) * noise(theta, times[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("arm", choices=["posterior", "joint"])
    ap.add_argument("--net", choices=["mlp", "transformer"], default="mlp")
    ap.add_argument("--steps", type=int, default=30000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--obs", type=int, default=sbibm.N_OBS, help="score the first K observations")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    run = Path(a.run_dir)
    for f in ("theta.npy", "x.npy", "observations.npy", "reference.npy"):
        if not (run / f).is_file():
            sys.exit(f"condition_masks.py: {run / f} is missing (a folder examples/sbi/run.sh wrote)")
    theta, x = np.load(run / "theta.npy"), np.load(run / "x.npy")
    observations, reference = np.load(run / "observations.npy"), np.load(run / "reference.npy")
    joint = np.concatenate([theta, x], 1).astype(np.float32)
    order = rng.permutation(len(joint))
    held = len(joint) // 10
    mean, sd = joint[order[held:]].mean(0), joint[order[held:]].std(0)
    data = torch.tensor((joint - mean) / sd)
    train, val = data[order[held:]], data[order[:held]]
    dim_theta, dim = theta.shape[1], joint.shape[1]
    posterior_mask = torch.cat([torch.ones(dim_theta), torch.zeros(dim - dim_theta)])

    make = (lambda: MaskedMLP(dim)) if a.net == "mlp" else (lambda: MaskedTransformer(dim))
    net, ema = make(), make()
    ema.load_state_dict(net.state_dict())
    ema.requires_grad_(False)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(123)  # one fixed draw of the held-out loss's times and noise
    val_t, val_z = torch.rand(held, generator=g) * (1 - T_EPS) + T_EPS, torch.randn(held, dim, generator=g)
    best, best_step, best_state = math.inf, 0, None
    start = time.time()
    for step in range(1, a.steps + 1):
        for group in opt.param_groups:
            group["lr"] = 1e-3 * min(1.0, step / 100) * 0.5 * (1 + math.cos(math.pi * step / a.steps))
        rows = torch.randint(len(train), (256,))
        t = torch.rand(256) * (1 - T_EPS) + T_EPS
        loss = masked_loss(net, train[rows], draw_masks(a.arm, 256, posterior_mask), t, torch.randn(256, dim))
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            for pe, pn in zip(ema.parameters(), net.parameters()):
                pe.mul_(0.999).add_(pn, alpha=0.001)
        if step % 300 == 0:
            with torch.no_grad():
                held_loss = masked_loss(ema, val, posterior_mask.expand(held, -1), val_t, val_z).item()
            if held_loss < best:
                best, best_step = held_loss, step
                best_state = {k: v.clone() for k, v in ema.state_dict().items()}
        if step % 1000 == 0:
            print(f"step {step}: loss {loss.item():.4f}, best held-out {best:.4f} at {best_step}, "
                  f"{time.time() - start:.0f} s", file=sys.stderr, flush=True)
    ema.load_state_dict(best_state)
    train_s = time.time() - start

    start = time.time()
    scores = []
    for k, xo in enumerate(observations[:a.obs]):
        x_given = torch.tensor(((xo - mean[dim_theta:]) / sd[dim_theta:]).astype(np.float32))
        draws = sample_posterior(ema, x_given, dim_theta, 10000).numpy() * sd[:dim_theta] + mean[:dim_theta]
        scores.append(float(sbibm.c2st(reference[k], draws, fast=True)))
    print(json.dumps(dict(arm=a.arm, net=a.net, steps=a.steps, best_held_out=best, best_step=best_step,
                          c2st=scores, c2st_mean=float(np.mean(scores)), train_s=round(train_s),
                          sample_and_c2st_s=round(time.time() - start))))


if __name__ == "__main__":
    main()
