"""GANs: losses and the WGAN-GP penalty against hand computations; covering the modes of a ring."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from representation.generative import GAN, discriminator_loss, generator_loss, gradient_penalty


def test_losses_match_their_formulas() -> None:
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    sigmoid = torch.sigmoid
    expected_d = -(torch.log(sigmoid(real)).mean() + torch.log(1 - sigmoid(fake)).mean())
    assert torch.allclose(discriminator_loss(real, fake), expected_d)
    assert torch.allclose(generator_loss(fake, "minimax"), torch.log(1 - sigmoid(fake)).mean())
    assert torch.allclose(generator_loss(fake, "non_saturating"), -torch.log(sigmoid(fake)).mean())
    assert torch.allclose(generator_loss(fake, "wgan_gp"), torch.tensor(1.25))
    assert math.isclose(discriminator_loss(torch.zeros(3), torch.zeros(3)).item(), 2 * math.log(2), rel_tol=1e-6)
    with pytest.raises(ValueError, match="unknown GAN loss"):
        generator_loss(fake, "hinge")


def test_gradient_penalty_of_a_linear_critic_is_its_weight_norm_gap() -> None:
    # critic(x) = w.x + b has gradient w everywhere: penalty = (||w|| - 1)^2 = (5 - 1)^2.
    critic = nn.Linear(2, 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[3.0, 4.0]]))
        critic.bias.fill_(0.7)
    real, fake = torch.randn(5, 2), torch.randn(5, 2)
    assert torch.allclose(gradient_penalty(critic, real, fake), torch.tensor(16.0))


def test_gradient_penalty_interpolates_between_real_and_fake() -> None:
    # critic(x) = 1/2 ||x||^2 has gradient x: the penalty sees x_hat = mix * real + (1 - mix) * fake.
    real = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    fake = torch.tensor([[0.0, 0.0], [0.0, 4.0]])
    mix = torch.tensor([0.25, 0.5])
    # x_hat = [0.5, 0] (norm 0.5) and [0, 2] (norm 2): ((0.5 - 1)^2 + (2 - 1)^2) / 2.
    penalty = gradient_penalty(lambda x: 0.5 * x.pow(2).sum(dim=1), real, fake, mix)
    assert torch.allclose(penalty, torch.tensor(0.625))


def test_penalty_gradient_reaches_the_critic_weights() -> None:
    critic = nn.Linear(2, 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[3.0, 4.0]]))
    gradient_penalty(critic, torch.randn(4, 2), torch.randn(4, 2)).backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w|| = 2 * 4 * [0.6, 0.8]
    assert torch.allclose(critic.weight.grad, torch.tensor([[4.8, 6.4]]))


def test_wgan_gp_updates_the_generator_once_per_n_critic_steps() -> None:
    torch.manual_seed(0)
    gan = GAN((2,), latent_dim=2, loss="wgan_gp", hidden_sizes=(8,), n_critic=3)
    optimizers = gan.configure_optimizers(1e-3)
    start = [p.detach().clone() for p in gan.generator.parameters()]
    data = torch.randn(4, 2)
    for step in range(2):
        assert "generator_loss" not in gan.training_step(data, None, optimizers, step)
    assert all(torch.equal(a, b) for a, b in zip(start, gan.generator.parameters()))
    assert "generator_loss" in gan.training_step(data, None, optimizers, 2)
    assert not all(torch.equal(a, b) for a, b in zip(start, gan.generator.parameters()))


@pytest.mark.parametrize("loss", ["non_saturating", "wgan_gp"])
def test_conditional_dcgan_trains_and_samples_images_in_range(loss: str) -> None:
    torch.manual_seed(0)
    gan = GAN((1, 8, 8), latent_dim=4, loss=loss, width=8, num_classes=3, n_critic=2)
    images = torch.randint(0, 256, (6, 1, 8, 8), dtype=torch.uint8)
    gan.fit(images, torch.tensor([0, 1, 2, 0, 1, 2]), epochs=2, batch_size=3, progress=False, seed=0)
    samples = gan.sample(4, torch.tensor([0, 1, 2, 2]))
    assert samples.shape == (4, 1, 8, 8) and samples.min() >= -1 and samples.max() <= 1
    with pytest.raises(ValueError, match="pass labels"):
        gan.sample(4)


def test_dcgan_refuses_images_it_cannot_build() -> None:
    with pytest.raises(ValueError, match="square images"):
        GAN((3, 12, 12))
    with pytest.raises(ValueError, match="square images"):
        GAN((3, 16, 32))


def test_gan_samples_cover_the_modes_of_a_gaussian_ring(gaussian_mixture) -> None:
    angle = torch.arange(8) * (2 * math.pi / 8)
    centers = 2.0 * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    data, _ = gaussian_mixture(4000, centers, torch.ones(8), std=0.05, seed=0)
    torch.manual_seed(0)
    gan = GAN((2,), latent_dim=8, hidden_sizes=(64, 64))
    gan.fit(data, epochs=60, batch_size=200, lr=2e-3, progress=False, seed=0)
    samples = gan.sample(2000)
    distance, nearest = torch.cdist(samples, centers).min(dim=1)
    close = distance < 0.3  # 6 data standard deviations; neighbouring modes are 1.53 apart
    per_mode = torch.bincount(nearest[close], minlength=8)
    # Over seeds 0-3 this reaches 66-85% close samples and 7-8 modes with >= 40 of them; samples
    # spread evenly along the ring would have 38% close.
    assert close.float().mean() > 0.5
    assert int((per_mode >= 40).sum()) >= 6  # 250 per mode if uniform over the modes
