"""Every generative model with a representation hands an agent an encoder: the file rebuilds, for
the agent's observation space, exactly the function of the observation the model computes."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.registry import agent_class
from representation.encoders import load_encoder_weights, make_encoder, read_encoder_file
from representation.generative import DDPM, GAN, NICE, VAE, HopfieldNetwork, RealNVP
from representation.generative.ddpm import DenoiserEncoder
from representation.generative.nets import signed_unit_interval


def rebuilt(model, path, space: gym.spaces.Box):
    """The encoder an agent builds from ``model``'s exported file, as ``build_encoder`` does."""
    name, options = model.export_encoder(path)
    payload = read_encoder_file(path)
    assert (payload["name"], payload["options"]) == (name, options)
    encoder = make_encoder(name, space, **options)
    load_encoder_weights(encoder, payload, path)
    return encoder.eval()


def vectors(n: int = 6, dim: int = 3) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(0)) * 2


def frames(shape: tuple[int, ...], n: int = 3) -> torch.Tensor:
    return torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


VECTOR_SPACE = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)


def test_a_vae_hands_over_its_posterior_torso(tmp_path):
    vae = VAE((3,), latent_dim=2, hidden_sizes=(8, 8))
    encoder = rebuilt(vae, tmp_path / "vae.pt", VECTOR_SPACE)
    x = vectors()
    with torch.no_grad():
        torch.testing.assert_close(encoder(x), vae.torso(x), rtol=0, atol=0)


def test_a_gan_hands_over_its_discriminator_torso_for_vectors(tmp_path):
    gan = GAN((3,), hidden_sizes=(16, 8))
    encoder = rebuilt(gan, tmp_path / "gan.pt", VECTOR_SPACE)
    assert encoder.out_dim == 8
    x = vectors()
    with torch.no_grad():  # the discriminator is the torso and then its logit layer
        torch.testing.assert_close(gan.discriminator[-1](encoder(x)).squeeze(1), gan.critic(x, None), rtol=0, atol=1e-6)


def test_a_nature_gan_hands_over_a_nature_torso_that_reads_uint8_frames(tmp_path):
    shape = (2, 36, 44)  # the Nature net takes any size from 36x36, unlike DCGAN's square powers of two
    gan = GAN(shape, net="nature", features_dim=32)
    assert gan.sample(2).shape == (2, *shape)
    encoder = rebuilt(gan, tmp_path / "gan.pt", gym.spaces.Box(0, 255, shape, np.uint8))
    x = frames(shape)
    with torch.no_grad():  # the GAN sees frames in [-1, 1], the agent's torso sees uint8 frames
        torch.testing.assert_close(gan.discriminator.logit(encoder(x)).squeeze(1),
                                   gan.critic(signed_unit_interval(x), None),
                                   rtol=0, atol=1e-5)


@pytest.mark.parametrize("model, message", [
    (lambda: GAN((3,), num_classes=2), "also reads the class label"),
    (lambda: GAN((1, 8, 8)), "train the GAN with net='nature'"),
    (lambda: HopfieldNetwork(4), "has no encoder"),
])
def test_models_without_an_agent_encoder_say_so(model, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        model().export_encoder(tmp_path / "none.pt")
    assert not (tmp_path / "none.pt").exists()


def test_a_ddpm_hands_over_its_averaged_denoiser_at_the_mean_of_q(tmp_path):
    ddpm = DDPM((3,), timesteps=50, hidden_sizes=(16, 8), ema_decay=0.9)
    ddpm.fit(vectors(64), epochs=2, batch_size=16, progress=False, seed=0)
    raw, averaged = ddpm.denoiser.state_dict(), ddpm.ema_denoiser.state_dict()
    assert not torch.equal(raw["out.weight"], averaged["out.weight"])
    encoder = rebuilt(ddpm, tmp_path / "ddpm.pt", VECTOR_SPACE)
    assert isinstance(encoder, DenoiserEncoder) and encoder.timestep == 5 and encoder.out_dim == 8
    x, t = vectors(), torch.full((6,), 5)
    with torch.no_grad():
        mean, _ = ddpm.q_mean_variance(x, t)  # Ho et al. 2020, Eq. 4
        torch.testing.assert_close(encoder(x), ddpm.ema_denoiser.features(mean, t), rtol=0, atol=1e-6)


def test_a_ddpm_on_images_pools_the_middle_block_to_a_grid(tmp_path):
    shape = (2, 16, 16)
    ddpm = DDPM(shape, timesteps=20, base_channels=4, time_dim=8, ema_decay=0.0)
    name, options = ddpm.export_encoder(tmp_path / "ddpm.pt")
    options["grid"] = 2
    encoder = make_encoder(name, gym.spaces.Box(0, 255, shape, np.uint8), **options)
    load_encoder_weights(encoder, read_encoder_file(tmp_path / "ddpm.pt"))
    x = frames(shape)
    t = torch.full((3,), ddpm.timesteps // 10)
    with torch.no_grad():
        middle = ddpm.denoiser.features(ddpm.q_mean_variance(signed_unit_interval(x), t)[0], t)  # [3, 8, 4, 4]
        blocks = middle.reshape(3, 8, 2, 2, 2, 2).mean(dim=(3, 5))  # each 2x2 block of the 4x4 map
        torch.testing.assert_close(encoder(x), blocks.flatten(1), rtol=0, atol=1e-6)
    assert encoder.out_dim == 8 * 2 * 2


@pytest.mark.parametrize("flow_class", [RealNVP, NICE])
def test_a_flow_hands_over_its_bijection(flow_class, tmp_path):
    flow = flow_class((3,), num_layers=4, hidden_sizes=(8,))
    flow.fit(vectors(64), epochs=1, batch_size=16, progress=False, seed=0)
    encoder = rebuilt(flow, tmp_path / "flow.pt", VECTOR_SPACE)
    x = vectors()
    with torch.no_grad():
        z = encoder(x)
        torch.testing.assert_close(z, flow(x)[0], rtol=0, atol=0)
        torch.testing.assert_close(flow.inverse(z), x, rtol=0, atol=1e-5)  # nothing about x is lost


def test_an_encoder_file_overrides_the_presets_encoder(tmp_path):
    """DQN's pixel preset asks for the Nature CNN; a ddpm file brings its own architecture."""
    env = "reprl/DistractorCartPole-v0"
    ddpm = DDPM((4, 64, 64), timesteps=20, base_channels=4, time_dim=8, ema_decay=0.0)
    ddpm.export_encoder(tmp_path / "ddpm.pt")
    agent = agent_class("dqn").from_env(env, encoder_checkpoint=str(tmp_path / "ddpm.pt"), freeze_encoder=True,
                                        buffer_size=100)
    assert agent.config.encoder == "ddpm" and isinstance(agent.q.encoder, DenoiserEncoder)
    assert not any(p.requires_grad for p in agent.q.encoder.parameters())
