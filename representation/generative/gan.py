"""Generative adversarial networks: minimax, non-saturating and WGAN-GP, optionally conditional.

Vectors ``[D]`` use MLPs; images use the DCGAN pair (Radford et al. 2016) for square sides of
8, 16, 32, ... or, with ``net="nature"``, a discriminator on the DQN network's torso and its mirror
image as generator, for any size from 36x36 (Atari's 84x84 frames). Images live in [-1, 1] (uint8
pixels are mapped there; samples come back there). A trained unconditional discriminator's torso
is an agent encoder (``export_encoder``), as Radford et al. (Sec. 5.1) reuse theirs as features.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from gymnasium import spaces
from torch import Tensor, nn

from representation.encoders import Encoder, MLPEncoder
from representation.generative.base import GenerativeModel
from representation.generative.conv_nets import (DCGANDiscriminator, DCGANGenerator, NatureDiscriminator,
                                                 NatureGenerator, broadcast_label_maps)
from representation.generative.nets import label_code, mlp, signed_unit_interval

LOSSES = ("non_saturating", "minimax", "wgan_gp")
IMAGE_NETS = ("dcgan", "nature")


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """-[log D(x) + log(1 - D(G(z)))] with D = sigmoid(logit) (Goodfellow et al. 2014, Eq. 1).

    Written with softplus: -log sigmoid(a) = softplus(-a) and -log(1 - sigmoid(a)) = softplus(a).
    """
    return nn.functional.softplus(-real_logits).mean() + nn.functional.softplus(fake_logits).mean()


def generator_loss(fake_logits: Tensor, kind: str) -> Tensor:
    """The generator's loss on the critic's outputs for its samples.

    minimax: minimise log(1 - D(G(z))) (Goodfellow et al. 2014, Eq. 1), which saturates when D
    rejects the samples; non_saturating: minimise -log D(G(z)) (same paper, Sec. 3);
    wgan_gp: minimise -E[critic(G(z))] (Arjovsky et al. 2017; Gulrajani et al. 2017, Algorithm 1).
    """
    if kind == "minimax":
        return -nn.functional.softplus(fake_logits).mean()
    if kind == "non_saturating":
        return nn.functional.softplus(-fake_logits).mean()
    if kind == "wgan_gp":
        return -fake_logits.mean()
    raise ValueError(f"unknown GAN loss '{kind}' (choose from {', '.join(LOSSES)})")


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor,
                     mix: Tensor | None = None) -> Tensor:
    """E[(||grad critic(x_hat)||_2 - 1)^2] at x_hat = mix * real + (1 - mix) * fake,
    mix ~ U[0, 1] per example (Gulrajani et al. 2017, Algorithm 1, lines 6-7)."""
    if mix is None:
        mix = torch.rand(real.shape[0], device=real.device)
    mix = mix.reshape(-1, *([1] * (real.dim() - 1)))
    x_hat = (mix * real + (1 - mix) * fake).detach().requires_grad_(True)
    grad, = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


class GAN(GenerativeModel):
    """A generator G(z[, y]) and a discriminator / critic D(x[, y]) trained against each other.

    ``loss`` picks the objective (see ``generator_loss``); with "wgan_gp" the critic is updated
    ``n_critic`` times per generator update, with penalty weight ``gp_weight`` and Adam(0, 0.9)
    (Gulrajani et al. 2017, Algorithm 1); otherwise both take one step per minibatch with
    Adam(0.5, 0.999) (Radford et al. 2016). ``num_classes > 0`` makes it a conditional GAN
    (Mirza & Osindero 2014): both networks see the one-hot label.
    """

    default_lr = 2e-4

    def __init__(self, data_shape: Sequence[int], latent_dim: int = 16, loss: str = "non_saturating",
                 hidden_sizes: Sequence[int] = (128, 128), width: int = 64, num_classes: int = 0,
                 gp_weight: float = 10.0, n_critic: int = 5, net: str = "dcgan", features_dim: int = 512):
        config = dict(data_shape=data_shape, latent_dim=latent_dim, loss=loss, hidden_sizes=hidden_sizes,
                      width=width, num_classes=num_classes, gp_weight=gp_weight, n_critic=n_critic, net=net,
                      features_dim=features_dim)
        super().__init__(config, data_shape, num_classes)
        if loss not in LOSSES:
            raise ValueError(f"unknown GAN loss '{loss}' (choose from {', '.join(LOSSES)})")
        if net not in IMAGE_NETS:
            raise ValueError(f"unknown GAN image net '{net}' (choose from {', '.join(IMAGE_NETS)})")
        if latent_dim < 1 or n_critic < 1:
            raise ValueError(f"latent_dim and n_critic must be >= 1, got {latent_dim} and {n_critic}")
        self.latent_dim, self.kind = int(latent_dim), loss
        self.gp_weight = float(gp_weight)
        self.n_critic = int(n_critic) if loss == "wgan_gp" else 1
        in_dim = self.latent_dim + self.num_classes
        self.hidden_sizes, self.net = [int(h) for h in hidden_sizes], net
        if len(self.data_shape) == 3 and net == "nature":
            self.generator = NatureGenerator(in_dim, self.data_shape, features_dim)
            self.discriminator = NatureDiscriminator(self.data_shape[0] + self.num_classes, self.data_shape,
                                                     features_dim)
        elif len(self.data_shape) == 3:
            self.generator = DCGANGenerator(in_dim, self.data_shape, width)
            self.discriminator = DCGANDiscriminator(self.data_shape[0] + self.num_classes, self.data_shape, width,
                                                    batch_norm=loss != "wgan_gp")
        elif len(self.data_shape) == 1:
            self.generator = mlp(in_dim, hidden_sizes, self.data_shape[0])
            self.discriminator = mlp(self.data_shape[0] + self.num_classes, hidden_sizes, 1)
        else:
            raise ValueError(f"a GAN takes vectors [D] or images [C, H, W], got data_shape {self.data_shape}")

    def generate(self, n: int, labels: Tensor | None) -> Tensor:
        z = torch.randn(n, self.latent_dim, device=self.device)
        return self.generator(torch.cat([z, label_code(labels, self.num_classes, n, z.device)], dim=1))

    def critic(self, x: Tensor, labels: Tensor | None) -> Tensor:
        """Discriminator logits (or WGAN critic values) ``[B]``."""
        code = label_code(labels, self.num_classes, x.shape[0], x.device)
        if x.dim() == 4:
            code = broadcast_label_maps(code, x.shape[2], x.shape[3])
        return self.discriminator(torch.cat([x, code], dim=1)).squeeze(1)

    def configure_optimizers(self, lr: float) -> list[torch.optim.Optimizer]:
        betas = (0.0, 0.9) if self.kind == "wgan_gp" else (0.5, 0.999)
        return [torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=betas),
                torch.optim.Adam(self.generator.parameters(), lr=lr, betas=betas)]

    def training_step(self, x: Tensor, labels: Tensor | None, optimizers: list[torch.optim.Optimizer],
                      step: int) -> dict[str, float]:
        """One critic update on this minibatch; a generator update after every ``n_critic`` of them."""
        critic_optimizer, generator_optimizer = optimizers
        real = signed_unit_interval(x)
        with torch.no_grad():
            fake = self.generate(real.shape[0], labels)
        real_out, fake_out = self.critic(real, labels), self.critic(fake, labels)
        if self.kind == "wgan_gp":
            penalty = gradient_penalty(lambda v: self.critic(v, labels), real, fake)
            critic_loss = fake_out.mean() - real_out.mean() + self.gp_weight * penalty
        else:
            critic_loss = discriminator_loss(real_out, fake_out)
        critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        critic_optimizer.step()
        metrics = {"critic_loss": critic_loss.item()}
        if (step + 1) % self.n_critic == 0:
            loss = generator_loss(self.critic(self.generate(real.shape[0], labels), labels), self.kind)
            generator_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            generator_optimizer.step()
            metrics["generator_loss"] = loss.item()
        return metrics

    @torch.no_grad()
    def sample(self, n: int, labels: Tensor | None = None) -> Tensor:
        labels = self.check_labels(labels, n)
        training = self.training
        self.eval()  # batch norm uses its running statistics
        samples = self.generate(n, labels)
        self.train(training)
        return samples

    def encoder_for_agents(self) -> tuple[Encoder, str, dict]:
        """The discriminator's torso: every layer but the logit, an ``mlp`` encoder (ReLU) for
        vectors and a ``nature`` one for images of the ``nature`` net."""
        if self.num_classes:
            raise ValueError("a conditional GAN's discriminator also reads the class label, "
                             "which an agent has none of")
        if len(self.data_shape) == 1:
            torso = MLPEncoder(spaces.Box(-float("inf"), float("inf"), self.data_shape), self.hidden_sizes, "relu")
            # mlp()'s hidden layers are MLPEncoder.net's, index for index; the logit layer comes after.
            hidden = {key: value for key, value in self.discriminator.state_dict().items()
                      if int(key.split(".")[0]) < len(torso.net)}
            torso.net.load_state_dict(hidden)
            return torso, "mlp", {"hidden_sizes": self.hidden_sizes, "activation": "relu"}
        if self.net != "nature":
            raise ValueError("a DCGAN discriminator is not an agent encoder; train the GAN with net='nature'")
        torso = self.discriminator.torso
        return torso, "nature", {"features_dim": torso.out_dim}
