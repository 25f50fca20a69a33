"""Synthetic data sets for the generative-model tests, made in the test with fixed seeds.

Handed to the tests as fixtures, so they work under any pytest import mode."""
from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread() -> None:
    # The test machine has 2 cores shared with other work; one thread keeps timings stable.
    torch.set_num_threads(1)


def _two_moons(n: int, noise: float = 0.05, seed: int = 0) -> torch.Tensor:
    """The two interleaved half circles of scikit-learn's ``make_moons``, ``[n, 2]``."""
    generator = torch.Generator().manual_seed(seed)
    angle = torch.rand(n, generator=generator) * math.pi
    upper = torch.rand(n, generator=generator) < 0.5
    x = torch.where(upper, torch.cos(angle), 1.0 - torch.cos(angle))
    y = torch.where(upper, torch.sin(angle), 0.5 - torch.sin(angle))
    return torch.stack([x, y], dim=1) + noise * torch.randn(n, 2, generator=generator)


def _gaussian_mixture(n: int, centers: torch.Tensor, weights: torch.Tensor, std: float,
                      seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` draws of an isotropic Gaussian mixture and the component each came from."""
    generator = torch.Generator().manual_seed(seed)
    component = torch.multinomial(weights, n, replacement=True, generator=generator)
    return centers[component] + std * torch.randn(n, centers.shape[1], generator=generator), component


def _diagonal_gaussian_nll(data: torch.Tensor) -> float:
    """Mean negative log-likelihood (nats) of ``data`` under its own maximum-likelihood diagonal Gaussian."""
    fitted = torch.distributions.Normal(data.mean(0), data.std(0, unbiased=False))
    return -fitted.log_prob(data).sum(1).mean().item()


@pytest.fixture(scope="session")
def two_moons() -> tuple[torch.Tensor, torch.Tensor, float]:
    """2000 training points, 2000 held-out points, and the held-out NLL of a fitted diagonal Gaussian."""
    held_out = _two_moons(2000, seed=1)
    return _two_moons(2000, seed=0), held_out, _diagonal_gaussian_nll(held_out)


@pytest.fixture(scope="session")
def gaussian_mixture() -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """``gaussian_mixture(n, centers, weights, std, seed=0)``: draws and their component indices."""
    return _gaussian_mixture
