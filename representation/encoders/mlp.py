"""Fully connected encoder for vector (and one-hot discrete) observations."""
from __future__ import annotations

from collections.abc import Sequence

from gymnasium import spaces
from torch import Tensor, nn

from representation.encoders.activations import Tanh
from representation.encoders.base import Encoder, flat_input_dim, positive_ints, to_flat_float
from representation.linear import Linear

ACTIVATIONS = {"tanh": Tanh, "relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU}


class MLPEncoder(Encoder):
    batch_shape_agnostic = True  # every leading dimension is batch (``agents.seed_stack``)

    def __init__(self, observation_space: spaces.Space, hidden_sizes: Sequence[int] = (64, 64),
                 activation: str = "tanh", layer_norm: bool = False):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation '{activation}' (choose from {', '.join(ACTIVATIONS)})")
        hidden_sizes = positive_ints("mlp", "hidden_sizes", hidden_sizes)
        self.observation_space = observation_space
        layers: list[nn.Module] = []
        width = flat_input_dim(observation_space)
        for size in hidden_sizes:
            layers.append(Linear(width, size))
            if layer_norm:
                layers.append(nn.LayerNorm(size))
            layers.append(ACTIVATIONS[activation]())
            width = size
        self.net = nn.Sequential(*layers)
        self.out_dim = width

    def forward(self, obs: Tensor) -> Tensor:
        return self.net(to_flat_float(obs, self.observation_space))
