"""The restricted Boltzmann machine with binary units, trained by contrastive divergence."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from representation.generative.base import GenerativeModel

MAX_ENUMERATED_UNITS = 20


def binary_configurations(n: int, device: torch.device | str = "cpu") -> Tensor:
    """All 2^n vectors of {0, 1}^n, ``[2^n, n]`` (for exact sums over small models)."""
    bits = torch.arange(n - 1, -1, -1, device=device)
    return ((torch.arange(2 ** n, device=device)[:, None] >> bits) & 1).float()


class RBM(GenerativeModel):
    """Visible v in {0,1}^V, hidden h in {0,1}^H, energy E(v, h) = -b.v - c.h - h^T W v.

    Summing out h gives the free energy F(v) = -b.v - sum_j softplus(c_j + W_j v), with
    p(v) = exp(-F(v)) / Z. CD-k (Hinton 2002) replaces the intractable model expectation in
    d log p(v)/d theta = -dF(v)/d theta + E_model[dF/d theta] by the end of a k-step Gibbs chain
    started at the data; minimising F(v_data) - F(v_k) with v_k held fixed gives exactly that update.
    """

    default_lr = 0.05

    def __init__(self, num_visible: int, num_hidden: int = 16, k: int = 1):
        super().__init__(dict(num_visible=num_visible, num_hidden=num_hidden, k=k), (num_visible,))
        if num_hidden < 1 or k < 1:
            raise ValueError(f"num_hidden and k must be >= 1, got {num_hidden} and {k}")
        self.k = int(k)
        self.weight = nn.Parameter(0.01 * torch.randn(num_hidden, num_visible))
        self.visible_bias = nn.Parameter(torch.zeros(num_visible))
        self.hidden_bias = nn.Parameter(torch.zeros(num_hidden))

    def check_data(self, data: Tensor, labels: Tensor | None) -> tuple[Tensor, Tensor | None]:
        data, labels = super().check_data(data, labels)
        if not bool(((data == 0) | (data == 1)).all()):
            raise ValueError("RBM data must hold only 0 and 1")
        return data.float(), labels

    def energy(self, v: Tensor, h: Tensor) -> Tensor:
        return -(v @ self.visible_bias) - (h @ self.hidden_bias) - ((h @ self.weight) * v).sum(dim=1)

    def free_energy(self, v: Tensor) -> Tensor:
        """F(v) = -log sum_h exp(-E(v, h)) per example."""
        return -(v @ self.visible_bias) - nn.functional.softplus(v @ self.weight.T + self.hidden_bias).sum(dim=1)

    def hidden_probabilities(self, v: Tensor) -> Tensor:
        return torch.sigmoid(v @ self.weight.T + self.hidden_bias)

    def visible_probabilities(self, h: Tensor) -> Tensor:
        return torch.sigmoid(h @ self.weight + self.visible_bias)

    @torch.no_grad()
    def gibbs(self, v: Tensor, steps: int) -> Tensor:
        """``steps`` rounds of block Gibbs sampling v -> h -> v."""
        for _ in range(steps):
            h = torch.bernoulli(self.hidden_probabilities(v))
            v = torch.bernoulli(self.visible_probabilities(h))
        return v

    def loss(self, x: Tensor, labels: Tensor | None) -> tuple[Tensor, dict[str, float]]:
        negative = self.gibbs(x, self.k)
        loss = self.free_energy(x).mean() - self.free_energy(negative).mean()
        with torch.no_grad():
            reconstruction = self.visible_probabilities(self.hidden_probabilities(x))
            error = (reconstruction - x).pow(2).sum(dim=1).mean()
        return loss, {"free_energy_gap": loss.item(), "reconstruction_error": error.item()}

    def configure_optimizers(self, lr: float) -> list[torch.optim.Optimizer]:
        return [torch.optim.SGD(self.parameters(), lr=lr, momentum=0.5)]

    def log_partition(self) -> Tensor:
        """log Z = log sum_v exp(-F(v)), by enumerating the 2^V visible states (V <= 20)."""
        if self.data_shape[0] > MAX_ENUMERATED_UNITS:
            raise ValueError(f"log Z by enumeration needs <= {MAX_ENUMERATED_UNITS} visible units, "
                             f"this RBM has {self.data_shape[0]}")
        return torch.logsumexp(-self.free_energy(binary_configurations(self.data_shape[0], self.device)), dim=0)

    def log_likelihood(self, v: Tensor) -> Tensor:
        """Exact log p(v) per example for small models (see ``log_partition``)."""
        return -self.free_energy(v.float()) - self.log_partition()

    @torch.no_grad()
    def sample(self, n: int, labels: Tensor | None = None, steps: int = 1000) -> Tensor:
        """The state of ``n`` Gibbs chains after ``steps`` rounds from uniform random visibles."""
        self.check_labels(labels, n)
        return self.gibbs(torch.bernoulli(torch.full((n, self.data_shape[0]), 0.5, device=self.device)), steps)
