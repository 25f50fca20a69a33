"""Convolutional networks for image data ``[C, H, W]``: the VAE's decoder, the DCGAN pair, and a
GAN pair on the DQN network for frames of any size (Atari's 84x84)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from gymnasium import spaces
from torch import Tensor, nn

from representation.encoders import NatureCNN
from representation.linear import Linear

# NatureCNN's convolutions as (out_channels, kernel, stride) (Mnih et al. 2015).
NATURE_CONVS = ((32, 8, 4), (64, 4, 2), (64, 3, 1))


def nature_feature_maps(height: int, width: int) -> list[tuple[int, int]]:
    """Spatial sizes before and after each NatureCNN convolution, input first."""
    sizes = [(height, width)]
    for _, kernel, stride in NATURE_CONVS:
        h, w = sizes[-1]
        sizes.append(((h - kernel) // stride + 1, (w - kernel) // stride + 1))
    if min(sizes[-1]) < 1:
        raise ValueError(f"images of {height}x{width} are too small for the Nature CNN (at least 36x36)")
    return sizes


class NatureDecoder(nn.Module):
    """The mirror image of NatureCNN: ``[B, in_dim]`` -> ``[B, C, H, W]`` (logits or means).

    Transposed convolutions undo the encoder's strides; ``output_padding`` restores the rows and
    columns a strided convolution drops, so any image of at least 36x36 comes back at full size.
    """

    def __init__(self, in_dim: int, data_shape: Sequence[int], features_dim: int = 512):
        super().__init__()
        channels, height, width = data_shape
        sizes = nature_feature_maps(height, width)
        self.map_shape = (NATURE_CONVS[-1][0], *sizes[-1])
        self.fc = nn.Sequential(Linear(in_dim, features_dim), nn.ReLU(),
                                Linear(features_dim, self.map_shape[0] * sizes[-1][0] * sizes[-1][1]), nn.ReLU())
        layers: list[nn.Module] = []
        in_channels = NATURE_CONVS[-1][0]
        for index in reversed(range(len(NATURE_CONVS))):
            _, kernel, stride = NATURE_CONVS[index]
            out_channels = NATURE_CONVS[index - 1][0] if index > 0 else channels
            (h, w), (h_out, w_out) = sizes[index], sizes[index + 1]
            padding = (h - kernel - (h_out - 1) * stride, w - kernel - (w_out - 1) * stride)
            layers.append(nn.ConvTranspose2d(in_channels, out_channels, kernel, stride, output_padding=padding))
            if index > 0:
                layers.append(nn.ReLU())
            in_channels = out_channels
        self.deconvs = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.deconvs(self.fc(z).reshape(-1, *self.map_shape))


def dcgan_upsamplings(data_shape: Sequence[int]) -> int:
    """Number of 2x up/down-samplings between a 4x4 map and a square image of side 4 * 2**k."""
    _, height, width = data_shape
    k = (height // 4).bit_length() - 1
    if height != width or height < 8 or height != 4 * 2 ** k:
        raise ValueError(f"DCGAN nets need square images of side 8, 16, 32, 64, ..., got {height}x{width}")
    return k


class DCGANGenerator(nn.Module):
    """Radford et al. 2016, Figure 1: project to 4x4, then fractionally-strided convolutions with
    batch norm and ReLU, halving the channels as the side doubles; tanh output in [-1, 1]."""

    def __init__(self, in_dim: int, data_shape: Sequence[int], width: int = 64):
        super().__init__()
        k = dcgan_upsamplings(data_shape)
        channels = width * 2 ** (k - 1)
        self.start_shape = (channels, 4, 4)
        self.project = nn.Sequential(Linear(in_dim, channels * 16), nn.Unflatten(1, self.start_shape),
                                     nn.BatchNorm2d(channels), nn.ReLU())
        layers: list[nn.Module] = []
        for _ in range(k - 1):
            layers += [nn.ConvTranspose2d(channels, channels // 2, 4, 2, 1), nn.BatchNorm2d(channels // 2), nn.ReLU()]
            channels //= 2
        layers += [nn.ConvTranspose2d(channels, data_shape[0], 4, 2, 1), nn.Tanh()]
        self.upsample = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.upsample(self.project(z))


class DCGANDiscriminator(nn.Module):
    """Radford et al. 2016: strided convolutions with LeakyReLU(0.2), batch norm after the first.

    ``in_channels`` counts the image channels plus any label maps of a conditional GAN. A WGAN-GP
    critic must not use batch norm (it couples the samples the gradient penalty treats one by one;
    Gulrajani et al. 2017, Sec. 4), so ``batch_norm=False`` leaves it out.
    """

    def __init__(self, in_channels: int, data_shape: Sequence[int], width: int = 64, batch_norm: bool = True):
        super().__init__()
        k = dcgan_upsamplings(data_shape)
        layers: list[nn.Module] = []
        channels = in_channels
        for index in range(k):
            out_channels = width * 2 ** index
            layers.append(nn.Conv2d(channels, out_channels, 4, 2, 1))
            if batch_norm and index > 0:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.LeakyReLU(0.2))
            channels = out_channels
        layers += [nn.Flatten(), Linear(channels * 16, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class NatureGenerator(nn.Module):
    """``NatureDecoder`` with a tanh output: images in [-1, 1] from codes ``[B, in_dim]``."""

    def __init__(self, in_dim: int, data_shape: Sequence[int], features_dim: int = 512):
        super().__init__()
        self.decoder = NatureDecoder(in_dim, data_shape, features_dim)

    def forward(self, z: Tensor) -> Tensor:
        return torch.tanh(self.decoder(z))


class NatureDiscriminator(nn.Module):
    """A ``NatureCNN`` torso and a linear logit: the discriminator whose torso an agent can load as
    its ``nature`` encoder. It reads images in [-1, 1], the GAN's range, and shows the torso
    ``(x + 1) / 2`` in [0, 1], which is how the torso sees uint8 frames inside an agent."""

    def __init__(self, in_channels: int, data_shape: Sequence[int], features_dim: int = 512):
        super().__init__()
        self.torso = NatureCNN(spaces.Box(0.0, 1.0, (in_channels, *data_shape[1:])), features_dim)
        self.logit = Linear(features_dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.logit(self.torso((x + 1) / 2))


def broadcast_label_maps(code: Tensor, height: int, width: int) -> Tensor:
    """One-hot codes ``[B, K]`` as constant channels ``[B, K, H, W]`` to stack onto images."""
    return code[:, :, None, None].expand(-1, -1, height, width)

