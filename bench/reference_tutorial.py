"""The tutorial's algorithm written the way a PyTorch user would write it.

Same problem as bench/tutorial_bench.cpp: the 8 points of the unit circle, x concatenated with
[t - 1/2, cos 2 pi t, sin 2 pi t, -cos 4 pi t], a ReLU MLP of width 256 and depth 4 predicting the
score, VP SDE with beta in [0.001, 3], denoising score matching with sigma^2 weighting, batch 8,
Adam 1e-3; then Euler-Maruyama on the reverse SDE. Used by compare_tutorial.py.
"""
import math
import time

import torch
from torch import nn

BETA_MIN, BETA_MAX, T, T_EPS = 0.001, 3.0, 1.0, 1e-3


def beta(t):
    return BETA_MIN + t * (BETA_MAX - BETA_MIN)


def alpha(t):
    return BETA_MIN * t + 0.5 * t * t * (BETA_MAX - BETA_MIN)


def features(x, t):
    return torch.cat([x, t - 0.5, torch.cos(2 * math.pi * t), torch.sin(2 * math.pi * t), -torch.cos(4 * math.pi * t)], 1)


def make_model():
    layers, width = [], 6
    for _ in range(4):
        layers += [nn.Linear(width, 256), nn.ReLU()]
        width = 256
    layers.append(nn.Linear(256, 2))
    return nn.Sequential(*layers)


def data():
    a = torch.arange(8, dtype=torch.float32) * (2 * math.pi / 8)
    return torch.stack([torch.cos(a), torch.sin(a)], 1)


def train(model, steps, warmup=200):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x0_all = data()

    def step():
        x0 = x0_all[torch.randperm(8)]
        t = torch.rand(8, 1) * (T - T_EPS) + T_EPS
        mean = torch.exp(-0.5 * alpha(t))
        std = torch.sqrt(1 - torch.exp(-alpha(t)))
        z = torch.randn_like(x0)
        xt = mean * x0 + std * z
        loss = ((std * model(features(xt, t)) + z) ** 2).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    return steps / (time.perf_counter() - t0), loss.item()


@torch.no_grad()
def sample(model, n, steps):
    h = (T - T_EPS) / steps
    x = torch.randn(n, 2)
    t0 = time.perf_counter()
    for i in range(steps):
        t = T - i * h
        tt = torch.full((n, 1), t)
        score = model(features(x, tt))
        g2 = beta(t)
        x = x + h * (0.5 * g2 * x + g2 * score)
        if i + 1 < steps:
            x = x + math.sqrt(g2 * h) * torch.randn_like(x)
    return time.perf_counter() - t0, x


if __name__ == "__main__":
    torch.manual_seed(0)
    torch.set_num_threads(1)
    m = make_model()
    print(train(m, 1000))
    torch.set_num_threads(2)
    print(sample(m, 5000, 100)[0])
