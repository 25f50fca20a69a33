"""Noise-prediction networks eps_theta(x_t, t) for DDPM: an MLP for vectors, a small U-Net for images."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from representation.linear import Linear


def sinusoidal_embedding(t: Tensor, dim: int) -> Tensor:
    """Transformer position encoding of the timestep (Vaswani et al. 2017), as DDPM uses (Ho et al.
    2020, Appendix B): ``[sin(t w_i), cos(t w_i)]`` with ``w_i = 10000^(-i / (dim/2))``."""
    half = dim // 2
    frequencies = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * frequencies[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class TimeEmbedding(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"the time embedding width must be even and >= 2, got {dim}")
        self.dim = dim
        self.net = nn.Sequential(Linear(dim, dim), nn.SiLU(), Linear(dim, dim))

    def forward(self, t: Tensor) -> Tensor:
        return self.net(sinusoidal_embedding(t, self.dim))


class TimeConditionedMLP(nn.Module):
    """eps_theta for vectors ``[B, D]``: each hidden layer adds a projection of the time embedding."""

    def __init__(self, dim: int, hidden_sizes: Sequence[int] = (128, 128, 128), time_dim: int = 64):
        super().__init__()
        if not hidden_sizes:
            raise ValueError("the DDPM MLP needs at least one hidden layer")
        self.time = TimeEmbedding(time_dim)
        widths = [dim, *[int(h) for h in hidden_sizes]]
        self.layers = nn.ModuleList(Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.time_projections = nn.ModuleList(Linear(time_dim, b) for b in widths[1:])
        self.out = Linear(widths[-1], dim)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return self.out(self.features(x, t))

    def features(self, x: Tensor, t: Tensor) -> Tensor:
        """The last hidden layer ``[B, hidden_sizes[-1]]``, what the output layer reads."""
        embedding = self.time(t)
        h = x
        for layer, projection in zip(self.layers, self.time_projections):
            h = nn.functional.silu(layer(h) + projection(embedding))
        return h


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, channels), channels)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with group norm and SiLU; the time embedding is added in between
    (the block of Ho et al. 2020, Appendix B, without dropout)."""

    def __init__(self, in_channels: int, out_channels: int, time_dim: int):
        super().__init__()
        self.norm0, self.conv0 = _group_norm(in_channels), nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time = Linear(time_dim, out_channels)
        self.norm1, self.conv1 = _group_norm(out_channels), nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: Tensor, embedding: Tensor) -> Tensor:
        h = self.conv0(nn.functional.silu(self.norm0(x))) + self.time(embedding)[:, :, None, None]
        h = self.conv1(nn.functional.silu(self.norm1(h)))
        return self.skip(x) + h


class SmallUNet(nn.Module):
    """eps_theta for images ``[B, C, H, W]`` (H, W divisible by 4): a two-level U-Net
    (Ronneberger et al. 2015) with residual blocks at each resolution and skip connections
    concatenated on the way up, a scaled-down version of DDPM's network."""

    def __init__(self, channels: int, base_channels: int = 32, time_dim: int = 64):
        super().__init__()
        c = base_channels
        self.time = TimeEmbedding(time_dim)
        self.stem = nn.Conv2d(channels, c, 3, padding=1)
        self.down0, self.pool0 = ResidualBlock(c, c, time_dim), nn.Conv2d(c, c, 3, stride=2, padding=1)
        self.down1, self.pool1 = ResidualBlock(c, 2 * c, time_dim), nn.Conv2d(2 * c, 2 * c, 3, stride=2, padding=1)
        self.middle = ResidualBlock(2 * c, 2 * c, time_dim)
        self.up1 = ResidualBlock(4 * c, 2 * c, time_dim)
        self.up0 = ResidualBlock(3 * c, c, time_dim)
        self.head = nn.Sequential(_group_norm(c), nn.SiLU(), nn.Conv2d(c, channels, 3, padding=1))

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        embedding = self.time(t)
        skip0, skip1, h = self.down_path(x, embedding)
        h = self.up1(torch.cat([nn.functional.interpolate(h, scale_factor=2.0), skip1], dim=1), embedding)
        h = self.up0(torch.cat([nn.functional.interpolate(h, scale_factor=2.0), skip0], dim=1), embedding)
        return self.head(h)

    def down_path(self, x: Tensor, embedding: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The skip connections at full and half resolution and the middle block's output, at a
        quarter of the resolution with ``2 * base_channels`` channels."""
        skip0 = self.down0(self.stem(x), embedding)
        skip1 = self.down1(self.pool0(skip0), embedding)
        return skip0, skip1, self.middle(self.pool1(skip1), embedding)

    def features(self, x: Tensor, t: Tensor) -> Tensor:
        """The middle block's output ``[B, 2 * base_channels, H / 4, W / 4]``, the deepest layer."""
        return self.down_path(x, self.time(t))[2]
