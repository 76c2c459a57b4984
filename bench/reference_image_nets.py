"""The image networks of sbgm (UNet, DiT, MLP-Mixer) written as a PyTorch user would write them,
layer for layer the same architectures (bench/compare_image_nets.py checks that the parameter
counts agree), for the forward+backward throughput comparison."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def group_norm(channels):
    groups = min(32, max(1, channels // 4))
    while channels % groups:
        groups -= 1
    return nn.GroupNorm(groups, channels)


def attention(q, k, v):
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v)
    w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), -1)
    return w @ v


class SelfAttention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.output = nn.Linear(width, width)

    def forward(self, x):
        b, n, w = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        return self.output(attention(q, k, v).transpose(1, 2).reshape(b, n, w))


class Embedding(nn.Module):
    """Sinusoidal time features through a two-layer SiLU MLP."""

    def __init__(self, features, out):
        super().__init__()
        half = features // 2
        self.register_buffer("freq", torch.exp(torch.arange(half) * (-math.log(1e4) / max(half - 1, 1))) * 1000)
        self.first = nn.Linear(features, out)
        self.second = nn.Linear(out, out)

    def forward(self, t):
        phase = t[:, None] * self.freq[None]
        return self.second(F.silu(self.first(torch.cat([phase.sin(), phase.cos()], 1))))


class ResBlock(nn.Module):
    def __init__(self, cin, cout, emb, heads):
        super().__init__()
        self.norm1, self.conv1 = group_norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb, 2 * cout)
        self.norm2, self.conv2 = group_norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None
        self.attn_norm = group_norm(cout) if heads else None
        self.attn = SelfAttention(cout, heads) if heads else None

    def forward(self, x, emb):
        r = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, 1)
        r = self.conv2(F.silu(self.norm2(r) * (1 + scale) + shift))
        h = (self.shortcut(x) if self.shortcut is not None else x) + r
        if self.attn is not None:
            b, c, hh, ww = h.shape
            tokens = self.attn_norm(h).flatten(2).transpose(1, 2)
            h = h + self.attn(tokens).transpose(1, 2).reshape(b, c, hh, ww)
        return h


class UNet(nn.Module):
    def __init__(self, shape, width, depth, mult, attention_res, heads):
        super().__init__()
        c_in, side = shape[0], shape[1]
        emb = 4 * width
        self.embedding = Embedding(width + width % 2, emb)
        self.input = nn.Conv2d(c_in, width, 3, padding=1)
        self.down, self.up = nn.ModuleList(), nn.ModuleList()
        skips, c = [width], width
        heads_at = lambda s: heads if s in attention_res else 0  # noqa: E731
        for level, m in enumerate(mult):
            for _ in range(depth):
                self.down.append(ResBlock(c, width * m, emb, heads_at(side)))
                c = width * m
                skips.append(c)
            if level + 1 < len(mult):
                self.down.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
                side //= 2
        self.middle = nn.ModuleList([ResBlock(c, c, emb, heads), ResBlock(c, c, emb, 0)])
        for level in reversed(range(len(mult))):
            for _ in range(depth + 1):
                self.up.append(ResBlock(c + skips.pop(), width * mult[level], emb, heads_at(side)))
                c = width * mult[level]
            if level > 0:
                self.up.append(nn.Conv2d(c, c, 3, padding=1))
                side *= 2
        self.output_norm, self.output = group_norm(c), nn.Conv2d(c, c_in, 3, padding=1)

    def forward(self, x, t):
        emb = F.silu(self.embedding(t))
        h = self.input(x)
        skips = [h]
        for layer in self.down:
            h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
            skips.append(h)
        for layer in self.middle:
            h = layer(h, emb)
        for layer in self.up:
            if isinstance(layer, ResBlock):
                h = layer(torch.cat([h, skips.pop()], 1), emb)
            else:
                h = layer(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.output(F.silu(self.output_norm(h)))


class MLP(nn.Module):
    def __init__(self, n, hidden):
        super().__init__()
        self.first, self.second = nn.Linear(n, hidden), nn.Linear(hidden, n)

    def forward(self, x):
        return self.second(F.gelu(self.first(x), approximate="tanh"))


def modulated_norm(x, shift, scale):
    return F.layer_norm(x, x.shape[-1:], eps=1e-6) * (1 + scale[:, None]) + shift[:, None]


class PatchBlock(nn.Module):
    def __init__(self, width, tokens, heads, mlp_ratio, token_hidden, attention_mixing):
        super().__init__()
        self.modulation = nn.Linear(width, 6 * width)
        self.attention = SelfAttention(width, heads) if attention_mixing else None
        self.token_mlp = None if attention_mixing else MLP(tokens, token_hidden)
        self.channel_mlp = MLP(width, round(width * mlp_ratio))

    def forward(self, x, c):
        m = self.modulation(c).chunk(6, 1)
        a = modulated_norm(x, m[0], m[1])
        mixed = self.attention(a) if self.attention is not None else self.token_mlp(a.transpose(1, 2)).transpose(1, 2)
        h = x + m[2][:, None] * mixed
        return h + m[5][:, None] * self.channel_mlp(modulated_norm(h, m[3], m[4]))


class PatchNet(nn.Module):
    """DiT (attention_mixing) or MLP-Mixer."""

    def __init__(self, shape, width, depth, heads, patch, mlp_ratio, token_hidden, attention_mixing):
        super().__init__()
        self.c, self.p = shape[0], patch
        rows, cols = shape[1] // patch, shape[2] // patch
        self.embedding = Embedding(width + width % 2, width)
        self.patchify = nn.Conv2d(self.c, width, patch, stride=patch)
        self.register_buffer("position", torch.randn(1, rows * cols, width) if attention_mixing else torch.zeros(1))
        self.blocks = nn.ModuleList(
            [PatchBlock(width, rows * cols, heads, mlp_ratio, token_hidden, attention_mixing) for _ in range(depth)])
        self.final_modulation = nn.Linear(width, 2 * width)
        self.final = nn.Linear(width, patch * patch * self.c)

    def forward(self, x, t):
        b, _, hh, ww = x.shape
        rows, cols, p = hh // self.p, ww // self.p, self.p
        c = F.silu(self.embedding(t))
        h = self.patchify(x).flatten(2).transpose(1, 2) + self.position
        for block in self.blocks:
            h = block(h, c)
        shift, scale = self.final_modulation(c).chunk(2, 1)
        h = self.final(modulated_norm(h, shift, scale))
        return h.reshape(b, rows, cols, p, p, self.c).permute(0, 5, 1, 3, 2, 4).reshape(b, self.c, hh, ww)
