"""The Hopfield network (Hopfield 1982): an associative memory of +-1 patterns.

Storage is Hebb's rule, a sum of outer products rather than an optimisation, so ``fit`` goes
through the shared loop with no optimizer: each minibatch adds its patterns to the weights.
``fit(patterns, epochs=1)`` is the rule itself; more epochs (or more calls) add the patterns again,
which scales W without moving its fixed points. ``store`` sets the memory to one pattern set.
"""
from __future__ import annotations

import torch
from torch import Tensor

from representation.generative.base import GenerativeModel


def hebbian_weights(patterns: Tensor) -> Tensor:
    """W = (1/N) sum_p x_p x_p^T with a zero diagonal, for +-1 patterns ``[P, N]``."""
    patterns = patterns.float()
    weights = patterns.T @ patterns / patterns.shape[1]
    return weights.fill_diagonal_(0.0)


class HopfieldNetwork(GenerativeModel):
    """Binary units s in {-1, +1}^N with symmetric weights and energy E(s) = -1/2 s^T W s.

    An asynchronous update sets one unit to the sign of its local field (W s)_i; with symmetric
    W and a zero diagonal this never raises the energy (Hopfield 1982), so repeated updates settle
    in a local minimum: the stored patterns, when few enough (about 0.14 N), are such minima.
    """

    def __init__(self, num_units: int):
        super().__init__(dict(num_units=num_units), (num_units,))
        self.num_units = int(num_units)
        self.register_buffer("weight", torch.zeros(self.num_units, self.num_units))

    def check_data(self, data: Tensor, labels: Tensor | None) -> tuple[Tensor, Tensor | None]:
        data, labels = super().check_data(data, labels)
        if not bool(((data == 1) | (data == -1)).all()):
            raise ValueError("Hopfield patterns must hold only -1 and +1")
        return data, labels

    def configure_optimizers(self, lr: float) -> list[torch.optim.Optimizer]:
        return []

    def training_step(self, x: Tensor, labels: Tensor | None, optimizers: list[torch.optim.Optimizer],
                      step: int) -> dict[str, float]:
        """Adds the minibatch's patterns to the weights (Hebb's rule is a sum over patterns)."""
        self.weight += hebbian_weights(x)
        return {"fixed_points": float(self.is_fixed_point(x).float().mean())}

    def store(self, patterns: Tensor) -> HopfieldNetwork:
        """Replaces the memory by exactly ``patterns`` ``[P, N]`` (the Hebbian weights of that set)."""
        patterns, _ = self.check_data(patterns, None)
        self.weight.copy_(hebbian_weights(patterns))
        return self

    def energy(self, states: Tensor) -> Tensor:
        """E(s) = -1/2 s^T W s per state ``[B]``."""
        states = states.float()
        return -0.5 * ((states @ self.weight) * states).sum(dim=1)

    def is_fixed_point(self, states: Tensor) -> Tensor:
        """True where no unit would change: every unit agrees with the sign of its field (ties keep)."""
        field = states.float() @ self.weight
        return ((field * states) >= 0).all(dim=1)

    @torch.no_grad()
    def update(self, states: Tensor, steps: int, generator: torch.Generator | None = None) -> Tensor:
        """``steps`` asynchronous updates of every state in the batch, one random unit at a time."""
        states = states.float().clone()
        rows = torch.arange(states.shape[0], device=states.device)
        for _ in range(steps):
            unit = torch.randint(0, self.num_units, (states.shape[0],), device=states.device, generator=generator)
            field = (self.weight[unit] * states).sum(dim=1)
            states[rows, unit] = torch.where(field == 0, states[rows, unit], torch.sign(field))
        return states

    @torch.no_grad()
    def recall(self, states: Tensor, max_sweeps: int = 100, generator: torch.Generator | None = None) -> Tensor:
        """Runs sweeps of N random asynchronous updates until every state is a fixed point."""
        states = states.float()
        for _ in range(max_sweeps):
            if bool(self.is_fixed_point(states).all()):
                break
            states = self.update(states, self.num_units, generator)
        return states

    @torch.no_grad()
    def sample(self, n: int, labels: Tensor | None = None) -> Tensor:
        """Energy minima reached from ``n`` uniformly random states."""
        self.check_labels(labels, n)
        start = torch.randint(0, 2, (n, self.num_units), device=self.device).float() * 2 - 1
        return self.recall(start)
