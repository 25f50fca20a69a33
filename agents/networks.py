"""Building blocks the agents put on top of any encoder: encoder set-up, heads, policies."""
from __future__ import annotations

import math

import torch
from gymnasium import spaces
from torch import Tensor, nn
from torch.distributions import Categorical, Independent, Normal

from representation.encoders import (Encoder, default_encoder_name, load_encoder_weights, make_encoder,
                                     read_encoder_file)


def build_encoder(config, observation_space: spaces.Space, load_checkpoint: bool = True) -> Encoder:
    """The encoder ``config`` asks for; resolves ``config.encoder`` to a concrete name in place.

    With ``encoder_checkpoint`` the file's architecture and weights are used; with
    ``freeze_encoder`` its parameters stop requiring gradients.
    """
    payload = None
    if config.encoder_checkpoint and load_checkpoint:
        payload = read_encoder_file(config.encoder_checkpoint)
        if config.encoder not in ("auto", payload["name"]):
            raise ValueError(f"--encoder {config.encoder} does not match the checkpoint's encoder '{payload['name']}'")
        config.encoder, config.encoder_options = payload["name"], dict(payload["options"])
    if config.encoder == "auto":
        config.encoder = default_encoder_name(observation_space)
    encoder = make_encoder(config.encoder, observation_space, **config.encoder_options)
    if payload is not None:
        load_encoder_weights(encoder, payload, config.encoder_checkpoint)
    if config.freeze_encoder:
        encoder.requires_grad_(False)
    return encoder


def orthogonal_init(module: nn.Module, gain: float = math.sqrt(2)) -> None:
    """Orthogonal weights and zero biases (Engstrom et al. 2020 found it matters for PPO)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            nn.init.orthogonal_(layer.weight, gain)
            nn.init.zeros_(layer.bias)


def linear(in_dim: int, out_dim: int, gain: float) -> nn.Linear:
    layer = nn.Linear(in_dim, out_dim)
    orthogonal_init(layer, gain)
    return layer


class CategoricalHead(nn.Module):
    def __init__(self, in_dim: int, action_space: spaces.Discrete):
        super().__init__()
        self.logits = linear(in_dim, int(action_space.n), gain=0.01)

    def forward(self, features: Tensor) -> Categorical:
        return Categorical(logits=self.logits(features), validate_args=False)

    @staticmethod
    def mode(dist: Categorical) -> Tensor:
        return dist.probs.argmax(-1)


class GaussianHead(nn.Module):
    """Diagonal Gaussian with a state-independent log-std (Schulman et al. 2017, PPO's MuJoCo policy)."""

    def __init__(self, in_dim: int, action_space: spaces.Box, log_std_init: float = 0.0):
        super().__init__()
        dim = int(action_space.shape[0])
        self.mean = linear(in_dim, dim, gain=0.01)
        self.log_std = nn.Parameter(torch.full((dim,), float(log_std_init)))

    def forward(self, features: Tensor) -> Independent:
        mean = self.mean(features)
        return Independent(Normal(mean, self.log_std.expand_as(mean).exp(), validate_args=False), 1,
                           validate_args=False)

    @staticmethod
    def mode(dist: Independent) -> Tensor:
        return dist.mean


def policy_head(in_dim: int, action_space: spaces.Space, log_std_init: float = 0.0) -> nn.Module:
    if isinstance(action_space, spaces.Discrete):
        return CategoricalHead(in_dim, action_space)
    if isinstance(action_space, spaces.Box) and len(action_space.shape) == 1:
        return GaussianHead(in_dim, action_space, log_std_init)
    raise ValueError(f"action space {action_space} is not supported (Discrete or 1-D Box)")


class BoxClipper:
    """Clips Gaussian samples into a Box at the env boundary; the buffer keeps the raw sample."""

    def __init__(self, action_space: spaces.Box, device: torch.device):
        self.low = torch.as_tensor(action_space.low, dtype=torch.float32, device=device)
        self.high = torch.as_tensor(action_space.high, dtype=torch.float32, device=device)

    def __call__(self, action: Tensor) -> Tensor:
        return torch.maximum(torch.minimum(action, self.high), self.low)
