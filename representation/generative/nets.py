"""Small building blocks shared by the generative models: MLPs, label codes, data scaling."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from gymnasium import spaces
from torch import Tensor, nn

from representation.linear import Linear
from representation.encoders.mlp import ACTIVATIONS


def mlp(in_dim: int, hidden_sizes: Sequence[int], out_dim: int, activation: str = "relu") -> nn.Sequential:
    """``in_dim -> hidden... -> out_dim`` with ``activation`` between layers and a linear output."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation '{activation}' (choose from {', '.join(ACTIVATIONS)})")
    layers: list[nn.Module] = []
    width = in_dim
    for size in hidden_sizes:
        layers += [Linear(width, int(size)), ACTIVATIONS[activation]()]
        width = int(size)
    layers.append(Linear(width, out_dim))
    return nn.Sequential(*layers)


def label_code(labels: Tensor | None, num_classes: int, batch: int, device: torch.device) -> Tensor:
    """One-hot class codes ``[batch, num_classes]`` (``[batch, 0]`` for unconditional models),
    the conditioning input of conditional VAEs (Sohn et al. 2015) and GANs (Mirza & Osindero 2014)."""
    if num_classes == 0:
        return torch.zeros(batch, 0, device=device)
    return nn.functional.one_hot(labels.long(), num_classes).float()


def unit_interval(x: Tensor) -> Tensor:
    """uint8 pixels to [0, 1], as the encoders see them; other data as floats, unchanged."""
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


def signed_unit_interval(x: Tensor) -> Tensor:
    """uint8 pixels to [-1, 1] (the range of a tanh generator and of DDPM's data); other data unchanged."""
    return x.float() / 127.5 - 1.0 if x.dtype == torch.uint8 else x.float()


def box_shape(observation_space: spaces.Space, name: str) -> tuple[int, ...]:
    """The shape of a Box observation space, what an encoder built on a generative model reads."""
    if not isinstance(observation_space, spaces.Box):
        raise ValueError(f"the {name} encoder needs Box observations, got {observation_space}")
    return tuple(int(d) for d in observation_space.shape)
