"""The encoder contract shared by agents, auxiliary objectives and pre-training."""
from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn


class Encoder(nn.Module):
    """Maps a batch of raw observations ``[B, *obs_shape]`` to features ``[B, out_dim]``.

    Encoders take observations exactly as the environment gives them (uint8 frames, float
    vectors, integer states) and do their own scaling, so replay can store the compact form.
    """

    out_dim: int

    def forward(self, obs: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def positive_int(encoder: str, option: str, value: Any) -> int:
    """``value`` when it is an integer >= 1; else a ValueError naming the encoder, option and value
    (a layer of width 0 or below would build, or fail, far from the option that asked for it)."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"the {encoder} encoder's {option} must be a positive integer, got {value!r}")
    return int(value)


def positive_ints(encoder: str, option: str, value: Any) -> list[int]:
    """``value`` as a list when it is a non-empty list of integers >= 1; else a ValueError naming
    the encoder, option and value."""
    if (isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value
            or any(isinstance(v, bool) or not isinstance(v, Integral) or v < 1 for v in value)):
        raise ValueError(f"the {encoder} encoder's {option} must be a non-empty list of positive integers, "
                         f"got {value!r}")
    return [int(v) for v in value]


def is_image_space(space: spaces.Space) -> bool:
    """Channel-first image observations: a 3-D Box such as Atari's ``[4, 84, 84]`` uint8 stack."""
    return isinstance(space, spaces.Box) and len(space.shape) == 3


def flat_input_dim(space: spaces.Space) -> int:
    """Width of the vector an MLP sees for ``space`` (discrete states are one-hot encoded)."""
    if isinstance(space, spaces.Discrete):
        return int(space.n)
    if isinstance(space, spaces.Box):
        return int(np.prod(space.shape))
    if isinstance(space, spaces.MultiBinary):
        return int(np.prod(space.shape))
    raise ValueError(f"observation space {space} cannot be flattened for an MLP encoder")


def to_flat_float(obs: Tensor, space: spaces.Space) -> Tensor:
    """Turns raw observations ``[*batch, *obs_shape]`` into ``[*batch, flat_input_dim]`` floats
    (any number of leading batch dimensions: K seeds' ``[K, B, ...]`` stay apart)."""
    if isinstance(space, spaces.Discrete):
        return torch.nn.functional.one_hot(obs.long() - int(space.start), int(space.n)).float()
    obs = obs.flatten(obs.dim() - len(space.shape)) if space.shape else obs.unsqueeze(-1)
    if obs.dtype == torch.uint8:
        return obs.float() / 255.0
    return obs.float()


@torch.no_grad()
def encode(encoder: Encoder, obs: Tensor, batch_size: int = 1024) -> Tensor:
    """Frozen features ``[n, out_dim]`` in evaluation mode, a minibatch at a time."""
    was_training = encoder.training
    encoder.eval()
    try:
        return torch.cat([encoder(obs[start:start + batch_size]) for start in range(0, obs.shape[0], batch_size)])
    finally:
        encoder.train(was_training)
