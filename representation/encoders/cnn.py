"""Convolutional encoders for stacked-frame pixel observations ``[C, H, W]``."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from gymnasium import spaces
from torch import Tensor, nn

from representation.encoders.base import Encoder, positive_int, positive_ints
from representation.linear import Linear


def _scaled(obs: Tensor) -> Tensor:
    # Frames are stored as uint8; the network sees [0, 1] (Mnih et al. 2015).
    return obs.float() / 255.0 if obs.dtype == torch.uint8 else obs.float()


def _require_image(observation_space: spaces.Space, name: str) -> None:
    if not (isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 3):
        raise ValueError(f"the {name} encoder needs [C, H, W] image observations, got {observation_space}")


def _channels_last(convs: nn.Module) -> nn.Module:
    """``convs`` with channels-last ([N, H, W, C] in memory) weights, so that convolutions compute
    in that layout whatever the input's: oneDNN's CPU kernels, backward above all, run faster on it
    (Nature CNN forward and backward at batch 32 and 256: about x1.3-1.5 on a 2-core CPU; IMPALA
    more). The layout changes no value a module holds or returns, nor the ``state_dict``."""
    return convs.to(memory_format=torch.channels_last)


def _conv_output_dim(net: nn.Module, shape: Sequence[int]) -> int:
    with torch.no_grad():
        return int(net(torch.zeros(1, *shape)).shape[1])


class NatureCNN(Encoder):
    """The DQN network's torso (Mnih et al. 2015, Methods: "Model architecture")."""

    def __init__(self, observation_space: spaces.Box, features_dim: int = 512):
        super().__init__()
        _require_image(observation_space, "nature")
        features_dim = positive_int("nature", "features_dim", features_dim)
        channels = observation_space.shape[0]
        self.convs = _channels_last(nn.Sequential(
            nn.Conv2d(channels, 32, 8, stride=4), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(),
            nn.Flatten(),
        ))
        self.fc = nn.Sequential(Linear(_conv_output_dim(self.convs, observation_space.shape), features_dim), nn.ReLU())
        self.out_dim = features_dim

    def forward(self, obs: Tensor) -> Tensor:
        return self.fc(self.convs(_scaled(obs)))


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv0 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv1(torch.relu(self.conv0(torch.relu(x))))


class ImpalaCNN(Encoder):
    """The IMPALA residual network (Espeholt et al. 2018, Figure 3, "large" architecture)."""

    def __init__(self, observation_space: spaces.Box, channels: Sequence[int] = (16, 32, 32), features_dim: int = 256):
        super().__init__()
        _require_image(observation_space, "impala")
        channels = positive_ints("impala", "channels", channels)
        features_dim = positive_int("impala", "features_dim", features_dim)
        layers: list[nn.Module] = []
        in_channels = observation_space.shape[0]
        for out_channels in channels:
            layers += [nn.Conv2d(in_channels, out_channels, 3, padding=1),
                       nn.MaxPool2d(3, stride=2, padding=1),
                       _ResidualBlock(out_channels), _ResidualBlock(out_channels)]
            in_channels = out_channels
        layers += [nn.ReLU(), nn.Flatten()]
        self.convs = _channels_last(nn.Sequential(*layers))
        self.fc = nn.Sequential(Linear(_conv_output_dim(self.convs, observation_space.shape), features_dim), nn.ReLU())
        self.out_dim = features_dim

    def forward(self, obs: Tensor) -> Tensor:
        return self.fc(self.convs(_scaled(obs)))
