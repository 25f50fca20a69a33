"""Generative models on any tensor dataset: ``Model(...).fit(data)``, ``.sample(n)``, ``.save(path)``.

VAE / beta-VAE / conditional VAE, GANs (minimax, non-saturating, WGAN-GP, conditional; MLP,
DCGAN or Nature CNN), DDPM, RealNVP and NICE flows, and the energy-based Hopfield network and RBM.
``GenerativeModel.load(path)`` reads back any of them. All but the energy-based models hand an
encoder to agents (``model.export_encoder(path)``, then ``--encoder-checkpoint path``): a VAE's
posterior torso, a GAN's discriminator torso, a DDPM's denoiser (``ddpm``), a flow's latent (``flow``).
"""
from representation.generative.base import GenerativeModel
from representation.generative.ddpm import DDPM, beta_schedule
from representation.generative.flows import NICE, AdditiveCoupling, AffineCoupling, CouplingFlow, RealNVP
from representation.generative.gan import GAN, discriminator_loss, generator_loss, gradient_penalty
from representation.generative.hopfield import HopfieldNetwork, hebbian_weights
from representation.generative.rbm import RBM
from representation.generative.vae import VAE, PosteriorMeanEncoder, gaussian_kl

__all__ = ["GenerativeModel", "VAE", "PosteriorMeanEncoder", "gaussian_kl", "GAN",
           "discriminator_loss", "generator_loss", "gradient_penalty", "DDPM", "beta_schedule", "CouplingFlow",
           "RealNVP", "NICE", "AffineCoupling", "AdditiveCoupling", "HopfieldNetwork", "hebbian_weights", "RBM"]
