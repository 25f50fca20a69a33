"""DDPM: the schedules, q(x_t | x_0) against the forward chain, Algorithm 2 against an exact
reference, and the mode proportions of a learned mixture."""
from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from representation.generative import DDPM, beta_schedule


def test_linear_schedule_endpoints_follow_ho_et_al_scaled_by_length() -> None:
    betas = beta_schedule("linear", 1000)
    assert betas[0].item() == pytest.approx(1e-4) and betas[-1].item() == pytest.approx(0.02)
    short = beta_schedule("linear", 100)
    assert short[0].item() == pytest.approx(1e-3) and short[-1].item() == pytest.approx(0.2)


def test_cosine_schedule_gives_the_cosine_alpha_bar() -> None:
    T, s = 1000, 0.008
    alpha_bar = torch.cumprod(1 - beta_schedule("cosine", T), 0)
    t = torch.arange(1, T + 1, dtype=torch.float64)
    expected = torch.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2 / math.cos(s / (1 + s) * math.pi / 2) ** 2
    # Away from the end, where beta is clipped at 0.999, the product is the formula itself.
    assert torch.allclose(alpha_bar[:990], expected[:990], rtol=1e-9, atol=1e-12)
    assert beta_schedule("cosine", T).max().item() <= 0.999
    with pytest.raises(ValueError, match="unknown beta schedule"):
        beta_schedule("quadratic", 10)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_closed_form_q_matches_iterating_the_forward_process(schedule: str) -> None:
    torch.manual_seed(0)
    model = DDPM((2,), timesteps=50, schedule=schedule, hidden_sizes=(4,))
    n, x0 = 100_000, torch.tensor([1.5, -2.0])
    x = x0.expand(n, 2)
    for step in range(50):
        beta = model.betas[step]
        x = (1 - beta).sqrt() * x + beta.sqrt() * torch.randn(n, 2)  # q(x_t | x_{t-1}), Eq. 2
        if step in (4, 24, 49):
            mean, variance = model.q_mean_variance(x0.expand(1, 2), torch.tensor([step]))
            assert torch.all((x.mean(0) - mean[0]).abs() < 4 * (variance[0] / n).sqrt())
            assert torch.all((x.var(0) - variance[0]).abs() < 4 * variance[0] * math.sqrt(2 / n))


class GaussianOracle(nn.Module):
    """The exact E[eps | x_t] for data x_0 ~ N(mu, std^2 I): b (x_t - a mu) / (a^2 std^2 + b^2),
    with a = sqrt(alpha_bar_t), b = sqrt(1 - alpha_bar_t)."""

    def __init__(self, alpha_bars: Tensor, mu: float, std: float):
        super().__init__()
        self.alpha_bars, self.mu, self.std = alpha_bars, mu, std

    def gain(self, t: Tensor | int) -> tuple[Tensor, Tensor]:
        a, b = self.alpha_bars[t].sqrt(), (1 - self.alpha_bars[t]).sqrt()
        return a, b / (a ** 2 * self.std ** 2 + b ** 2)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        a, k = self.gain(t)
        return k[:, None] * (x - a[:, None] * self.mu)


def test_ancestral_sampling_matches_the_exact_linear_gaussian_reference() -> None:
    # With the exact noise predictor for Gaussian data every sampling step is affine in x_t plus
    # Gaussian noise, so the law of the samples can be propagated exactly, step by step.
    torch.manual_seed(0)
    model = DDPM((2,), timesteps=40, schedule="linear", hidden_sizes=(4,), ema_decay=0.0)
    oracle = GaussianOracle(model.alpha_bars.double(), mu=1.0, std=0.5)
    model.denoiser = oracle
    samples = model.sample(50_000)
    mean, variance = torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
    for step in reversed(range(40)):
        beta = model.betas[step].double()
        a, k = oracle.gain(step)
        b = (1 - model.alpha_bars[step].double()).sqrt()
        scale = (1 - beta * k / b) / (1 - beta).sqrt()
        mean = scale * mean + beta * k * a * oracle.mu / (b * (1 - beta).sqrt())
        variance = scale ** 2 * variance + (beta if step > 0 else 0.0)
    n = samples.shape[0]
    assert torch.all((samples.double().mean(0) - mean).abs() < 4 * (variance / n).sqrt())
    assert torch.all((samples.double().var(0) - variance).abs() < 4 * variance * math.sqrt(2 / n))
    assert abs(mean.item() - 1.0) < 0.05 and abs(variance.sqrt().item() - 0.5) < 0.05  # near the data


def test_unet_ddpm_fits_and_samples_images() -> None:
    torch.manual_seed(0)
    model = DDPM((1, 8, 8), timesteps=10, base_channels=8, time_dim=16)
    images = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    noisy = torch.randn(2, 1, 8, 8)
    assert not torch.allclose(model.denoiser(noisy, torch.tensor([0, 0])),
                              model.denoiser(noisy, torch.tensor([0, 9])))  # the time step matters
    model.fit(images, epochs=2, batch_size=2, progress=False, seed=0)
    assert model.sample(3).shape == (3, 1, 8, 8)
    with pytest.raises(ValueError, match="divisible by 4"):
        DDPM((1, 6, 6))


def test_sampling_uses_a_moving_average_of_the_trained_weights() -> None:
    torch.manual_seed(0)
    model = DDPM((2,), timesteps=10, hidden_sizes=(8,), ema_decay=0.5)
    optimizers = model.configure_optimizers(0.1)
    before = [p.detach().clone() for p in model.denoiser.parameters()]
    model.training_step(torch.randn(16, 2), None, optimizers, step=0)  # decay min(0.5, 1/10) = 0.1
    for old, new, ema in zip(before, model.denoiser.parameters(), model.ema_denoiser.parameters()):
        assert torch.allclose(ema, 0.1 * old + 0.9 * new)
    model.training_step(torch.randn(16, 2), None, optimizers, step=20)  # decay min(0.5, 21/30) = 0.5
    assert not torch.equal(next(model.ema_denoiser.parameters()), next(model.denoiser.parameters()))


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_samples_reproduce_the_mode_proportions_of_a_mixture(schedule: str, gaussian_mixture) -> None:
    centers = torch.tensor([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
    weights = torch.tensor([0.5, 0.3, 0.2])
    data, _ = gaussian_mixture(3000, centers, weights, std=0.2, seed=0)
    torch.manual_seed(0)
    model = DDPM((2,), timesteps=100, schedule=schedule, hidden_sizes=(128, 128))
    model.fit(data, epochs=40, batch_size=100, lr=2e-3, progress=False, seed=0)
    samples = model.sample(2000)
    distance, nearest = torch.cdist(samples, centers).min(dim=1)
    assert (distance < 0.8).float().mean() > 0.9  # 4 standard deviations of a component
    proportions = torch.bincount(nearest, minlength=3).float() / samples.shape[0]
    # Over seeds 0-3 the largest error is 0.035 with 30 epochs (2000 samples: standard error 0.011).
    assert torch.all((proportions - weights).abs() < 0.05)
