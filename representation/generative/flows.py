"""Normalizing flows with coupling layers: RealNVP (affine) and NICE (additive).

A flow is an invertible map f from data x to a latent z ~ N(0, I), and
log p(x) = log N(f(x); 0, I) + log |det df/dx|  (Dinh et al. 2017, Eq. 3).
Coupling layers keep half the coordinates (the mask) and transform the other half with functions
of the kept half, so the Jacobian is triangular and its log-determinant is a cheap sum. Successive
layers alternate the mask so every coordinate gets transformed. Data of any shape is flattened.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from gymnasium import spaces
from torch import Tensor, nn

from representation.encoders import Encoder, register_encoder
from representation.generative.base import GenerativeModel
from representation.generative.nets import box_shape, mlp


def alternating_mask(dim: int, parity: int) -> Tensor:
    """1 for the coordinates a coupling layer keeps: every other one, starting at ``parity``."""
    return ((torch.arange(dim) + parity) % 2 == 0).float()


class AffineCoupling(nn.Module):
    """y = m*x + (1-m) * (x * exp(s(m*x)) + t(m*x)),  log|det| = sum((1-m) * s)  (Dinh et al. 2017, Eq. 9).

    s is a learned per-dimension scale times tanh of the network's output, which keeps the
    log-scales bounded early in training (the paper's choice, Sec. 4.1). The last layer starts at
    zero, so each coupling starts as the identity.
    """

    def __init__(self, mask: Tensor, hidden_sizes: Sequence[int]):
        super().__init__()
        self.register_buffer("mask", mask)
        dim = mask.numel()
        self.net = mlp(dim, hidden_sizes, 2 * dim)
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        self.scale = nn.Parameter(torch.ones(dim))

    def _shift_and_log_scale(self, kept: Tensor) -> tuple[Tensor, Tensor]:
        raw_log_scale, shift = self.net(kept).chunk(2, dim=1)
        free = 1 - self.mask
        return shift * free, self.scale * torch.tanh(raw_log_scale) * free

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        shift, log_scale = self._shift_and_log_scale(x * self.mask)
        return x * log_scale.exp() + shift, log_scale.sum(dim=1)

    def inverse(self, y: Tensor) -> Tensor:
        shift, log_scale = self._shift_and_log_scale(y * self.mask)  # the kept half passes unchanged
        return (y - shift) * (-log_scale).exp()


class AdditiveCoupling(nn.Module):
    """y = x + (1-m) * t(m*x): volume preserving, log|det| = 0 (Dinh et al. 2015, Eq. 4 / Sec. 3.2)."""

    def __init__(self, mask: Tensor, hidden_sizes: Sequence[int]):
        super().__init__()
        self.register_buffer("mask", mask)
        dim = mask.numel()
        self.net = mlp(dim, hidden_sizes, dim)
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x + self.net(x * self.mask) * (1 - self.mask), x.new_zeros(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        return y - self.net(y * self.mask) * (1 - self.mask)


class DiagonalScaling(nn.Module):
    """NICE's last layer, y = x * exp(s), log|det| = sum(s) (Dinh et al. 2015, Sec. 3.3): additive
    couplings preserve volume, so this is where a NICE model sets each dimension's spread."""

    def __init__(self, dim: int):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(dim))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x * self.log_scale.exp(), self.log_scale.sum().expand(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        return y * (-self.log_scale).exp()


class CouplingFlow(GenerativeModel):
    """A stack of ``num_layers`` coupling layers with alternating masks (``RealNVP`` or ``NICE``)."""

    kind: str  # the name the ``flow`` encoder rebuilds it by
    coupling: type[nn.Module]
    final_scaling: bool

    def __init__(self, data_shape: Sequence[int], num_layers: int = 8, hidden_sizes: Sequence[int] = (64, 64)):
        super().__init__(dict(data_shape=data_shape, num_layers=num_layers, hidden_sizes=hidden_sizes), data_shape)
        self.dim = math.prod(self.data_shape)
        if self.dim < 2 or num_layers < 1:
            raise ValueError(f"a coupling flow needs data of >= 2 values and >= 1 layer, "
                             f"got {self.dim} and {num_layers}")
        layers: list[nn.Module] = [self.coupling(alternating_mask(self.dim, i % 2), hidden_sizes)
                                   for i in range(num_layers)]
        if self.final_scaling:
            layers.append(DiagonalScaling(self.dim))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """z = f(x) ``[B, dim]`` and log|det df/dx| ``[B]``."""
        z = x.reshape(x.shape[0], -1).float()
        log_det = z.new_zeros(z.shape[0])
        for layer in self.layers:
            z, layer_log_det = layer(z)
            log_det = log_det + layer_log_det
        return z, log_det

    def inverse(self, z: Tensor) -> Tensor:
        """x = f^{-1}(z), shaped like the data."""
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z.reshape(-1, *self.data_shape)

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact log p(x) per example (nats)."""
        z, log_det = self(x)
        return -0.5 * (z.pow(2).sum(dim=1) + self.dim * math.log(2 * math.pi)) + log_det

    def loss(self, x: Tensor, labels: Tensor | None) -> tuple[Tensor, dict[str, float]]:
        loss = -self.log_prob(x).mean()
        return loss, {"nll": loss.item()}

    @torch.no_grad()
    def sample(self, n: int, labels: Tensor | None = None) -> Tensor:
        self.check_labels(labels, n)
        return self.inverse(torch.randn(n, self.dim, device=self.device))

    def encoder_for_agents(self) -> tuple[Encoder, str, dict]:
        """The flow itself as a ``flow`` encoder: features ``z = f(x)``."""
        options = dict(kind=self.kind, num_layers=self.config["num_layers"],
                       hidden_sizes=list(self.config["hidden_sizes"]))
        encoder = FlowEncoder(spaces.Box(-float("inf"), float("inf"), self.data_shape), **options).to(self.device)
        encoder.flow.load_state_dict(self.state_dict())
        return encoder, "flow", options


class RealNVP(CouplingFlow):
    """Real-valued non-volume preserving flow (Dinh et al. 2017) with affine couplings.

    Batch normalisation and the multi-scale architecture of the paper are left out: this is the
    flow for vectors and small inputs.
    """

    kind = "realnvp"
    coupling = AffineCoupling
    final_scaling = False


class NICE(CouplingFlow):
    """Non-linear independent components estimation (Dinh et al. 2015): additive couplings and a
    final diagonal scaling, with a standard Gaussian prior."""

    kind = "nice"
    coupling = AdditiveCoupling
    final_scaling = True


FLOWS = {"realnvp": RealNVP, "nice": NICE}


@register_encoder("flow")
class FlowEncoder(Encoder):
    """A coupling flow's latent ``z = f(x)`` ``[B, prod(obs_shape)]`` (``kind``: realnvp or nice):
    a bijection, so no information about the observation is lost, in coordinates a trained flow
    makes close to independent standard normals."""

    def __init__(self, observation_space: spaces.Space, kind: str = "realnvp", num_layers: int = 8,
                 hidden_sizes: Sequence[int] = (64, 64)):
        super().__init__()
        if kind not in FLOWS:
            raise ValueError(f"unknown flow '{kind}' (choose from {', '.join(FLOWS)})")
        self.flow = FLOWS[kind](box_shape(observation_space, "flow"), num_layers, hidden_sizes)
        self.out_dim = self.flow.dim

    def forward(self, obs: Tensor) -> Tensor:
        return self.flow(obs)[0]
