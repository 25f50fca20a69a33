"""Q-value heads: plain or dueling, deterministic or noisy, scalar or distributional.

One head covers DQN's variants: ``dueling`` splits it into value and advantage streams
(Wang et al. 2016, eq. 9 with the mean, eq. 8 with the max), ``noisy`` swaps its linear layers
for factorised Gaussian NoisyNet layers (Fortunato et al. 2018, eq. 10-11) and ``atoms > 1``
makes it output a categorical return distribution per action (Bellemare et al. 2017).
``QNetwork`` is DQN's whole network: an encoder and one such head.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from agents.networks import FeatureStandardizer
from representation.linear import Linear, affine

if TYPE_CHECKING:
    from agents.dqn import DQNConfig


class NoisyLinear(nn.Module):
    """``y = (mu_w + sigma_w * eps_w) x + mu_b + sigma_b * eps_b`` with factorised noise
    ``eps_w = f(eps_out) f(eps_in)^T``, ``f(x) = sgn(x) sqrt|x|`` (Fortunato et al. 2018, sec. 3)."""

    takes_noise = True  # forward(x, noise): whether to add the noise

    def __init__(self, in_features: int, out_features: int, sigma0: float = 0.5):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features)
        self.weight_mu = nn.Parameter(torch.empty(out_features, in_features).uniform_(-bound, bound))
        self.bias_mu = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound))
        self.weight_sigma = nn.Parameter(torch.full((out_features, in_features), sigma0 / math.sqrt(in_features)))
        self.bias_sigma = nn.Parameter(torch.full((out_features,), sigma0 / math.sqrt(in_features)))
        self.register_buffer("eps_in", torch.zeros(in_features))
        self.register_buffer("eps_out", torch.zeros(out_features))

    @staticmethod
    def draw(size: int, device: torch.device, generator: torch.Generator | None = None) -> Tensor:
        """``size`` standard normal draws from ``generator`` (else the global RNG), on ``device``."""
        return torch.randn(size, generator=generator, device=device if generator is None else generator.device
                           ).to(device)

    @staticmethod
    def scale(x: Tensor) -> Tensor:
        """``f(x) = sgn(x) sqrt|x|``, elementwise."""
        return x.sign() * x.abs().sqrt()

    def reset_noise(self, generator: torch.Generator | None = None) -> None:
        self.eps_in.copy_(self.scale(self.draw(self.in_features, self.eps_in.device, generator)))
        self.eps_out.copy_(self.scale(self.draw(self.out_features, self.eps_out.device, generator)))

    def forward(self, x: Tensor, noise: bool = True) -> Tensor:
        if not noise:
            return affine(x, self.weight_mu, self.bias_mu)
        weight = self.weight_mu + self.weight_sigma * torch.outer(self.eps_out, self.eps_in)
        return affine(x, weight, self.bias_mu + self.bias_sigma * self.eps_out)


class QHead(nn.Module):
    """Features ``[..., F]`` to Q-values ``[..., A]``, or to logits ``[..., A, atoms]`` when distributional."""

    batch_shape_agnostic = True  # every leading dimension is batch (``agents.seed_stack``)

    def __init__(self, in_dim: int, num_actions: int, *, dueling: bool = False, aggregation: str = "mean",
                 noisy: bool = False, sigma0: float = 0.5, atoms: int = 1, hidden: int = 0):
        super().__init__()
        self.num_actions, self.atoms, self.dueling, self.aggregation = num_actions, atoms, dueling, aggregation

        def layer(i: int, o: int) -> nn.Module:
            return NoisyLinear(i, o, sigma0) if noisy else Linear(i, o)

        def stream(out: int) -> nn.ModuleList:
            return nn.ModuleList([layer(in_dim, hidden), layer(hidden, out)] if hidden else [layer(in_dim, out)])

        self.advantage = stream(num_actions * atoms)
        self.value = stream(atoms) if dueling else None

    @staticmethod
    def _run(stream: nn.ModuleList, x: Tensor, noise: bool) -> Tensor:
        for i, layer in enumerate(stream):
            x = layer(x, noise) if getattr(layer, "takes_noise", False) else layer(x)
            if i < len(stream) - 1:
                x = torch.relu(x)
        return x

    def forward(self, features: Tensor, noise: bool = True) -> Tensor:
        out = self._run(self.advantage, features, noise).unflatten(-1, (self.num_actions, self.atoms))
        if self.value is not None:
            value = self._run(self.value, features, noise).unsqueeze(-2)
            baseline = out.mean(-2, keepdim=True) if self.aggregation == "mean" else out.max(-2, keepdim=True).values
            out = value + out - baseline
        return out.squeeze(-1) if self.atoms == 1 else out

    def reset_noise(self, generator: torch.Generator | None = None) -> None:
        """Fresh noise for every NoisyNet layer, in module order (from ``generator``, else the global RNG)."""
        for module in self.modules():
            if isinstance(module, NoisyLinear):
                module.reset_noise(generator)


class QNetwork(nn.Module):
    """Encoder plus ``QHead`` (with ``standardize_features``, a ``FeatureStandardizer`` between
    them); ``q_values`` is the expectation over atoms when distributional."""

    batch_shape_agnostic = True  # every leading dimension is batch (``agents.seed_stack``)

    def __init__(self, encoder: nn.Module, num_actions: int, config: DQNConfig):
        super().__init__()
        self.encoder = encoder
        self.standardize = FeatureStandardizer(encoder.out_dim) if config.standardize_features else nn.Identity()
        self.head = QHead(encoder.out_dim, num_actions, dueling=config.dueling,
                          aggregation=config.dueling_aggregation, noisy=config.noisy, sigma0=config.noisy_sigma0,
                          atoms=config.atoms if config.distributional else 1, hidden=config.head_hidden)
        self.register_buffer("support", torch.linspace(config.v_min, config.v_max, config.atoms))

    def forward(self, obs: Tensor, noise: bool = True, encoded: bool = False) -> Tensor:
        """Q-values ``[..., A]``, or logits ``[..., A, atoms]`` when distributional; ``encoded``:
        ``obs`` are already the encoder's features."""
        return self.head(self.standardize(obs if encoded else self.encoder(obs)), noise)

    def q_values(self, obs: Tensor, noise: bool = True, encoded: bool = False) -> Tensor:
        out = self(obs, noise, encoded)
        # (the support's own last dimension lines up with the atoms: K stacked copies' supports
        # are [K, 1, atoms], against logits [K, B, A, atoms])
        return out if self.head.atoms == 1 else (out.softmax(-1) * self.support.unsqueeze(-2)).sum(-1)
