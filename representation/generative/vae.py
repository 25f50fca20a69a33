"""Variational auto-encoders: VAE, beta-VAE and conditional VAE in one class.

The encoder torso is one of the framework's own encoders (``MLPEncoder`` for vectors,
``NatureCNN`` for images), so a trained VAE hands its torso to an agent unchanged
(``export_encoder``) or serves its posterior mean as an agent's encoder (``as_encoder``).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from gymnasium import spaces
from torch import Tensor, nn

from representation.encoders import Encoder, MLPEncoder, NatureCNN
from representation.linear import Linear
from representation.generative.base import GenerativeModel
from representation.generative.conv_nets import NatureDecoder
from representation.generative.nets import label_code, mlp, unit_interval

LIKELIHOODS = ("gaussian", "bernoulli")


def gaussian_kl(mean: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) per example, summed over latent dimensions.

    Kingma & Welling 2014, Appendix B: -KL = 1/2 * sum(1 + log sigma^2 - mu^2 - sigma^2).
    """
    return 0.5 * (logvar.exp() + mean.pow(2) - 1.0 - logvar).sum(dim=1)


class PosteriorMeanEncoder(Encoder):
    """The VAE's posterior mean ``E[z | x]`` as an agent encoder (shares the VAE's weights)."""

    def __init__(self, torso: Encoder, mean_head: nn.Linear):
        super().__init__()
        self.torso = torso
        self.mean_head = mean_head
        self.out_dim = mean_head.out_features

    def forward(self, obs: Tensor) -> Tensor:
        return self.mean_head(self.torso(obs))


class VAE(GenerativeModel):
    """Auto-encoding variational Bayes (Kingma & Welling 2014) with the options of its variants.

    Trains on the negative ELBO ``-E_q[log p(x|z)] + beta * KL(q(z|x) || p(z))`` with the
    reparameterisation ``z = mu + sigma * eps``. ``beta > 1`` is the beta-VAE (Higgins et al.
    2017); ``num_classes > 0`` the conditional VAE (Sohn et al. 2015), whose posterior and
    decoder both see the one-hot label. ``likelihood`` picks the decoder: "bernoulli" (data in
    [0, 1], e.g. uint8 frames) or "gaussian" with a learned standard deviation per dimension.

    Vectors ``[D]`` use an MLP; images ``[C, H, W]`` (such as Atari's uint8 ``[4, 84, 84]``) use a
    ``NatureCNN`` torso with ``features_dim`` features and a mirrored transposed-conv decoder.
    """

    def __init__(self, data_shape: Sequence[int], latent_dim: int = 2, hidden_sizes: Sequence[int] = (128, 128),
                 activation: str = "relu", beta: float = 1.0, likelihood: str = "gaussian",
                 num_classes: int = 0, features_dim: int = 512):
        config = dict(data_shape=data_shape, latent_dim=latent_dim, hidden_sizes=hidden_sizes, activation=activation,
                      beta=beta, likelihood=likelihood, num_classes=num_classes, features_dim=features_dim)
        super().__init__(config, data_shape, num_classes)
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"unknown likelihood '{likelihood}' (choose from {', '.join(LIKELIHOODS)})")
        if latent_dim < 1 or beta < 0:
            raise ValueError(f"latent_dim must be >= 1 and beta >= 0, got {latent_dim} and {beta}")
        self.latent_dim, self.beta, self.likelihood = int(latent_dim), float(beta), likelihood
        space = spaces.Box(-math.inf, math.inf, self.data_shape)
        if len(self.data_shape) == 3:
            self.torso: Encoder = NatureCNN(space, features_dim)
            self.encoder_name, self.encoder_options = "nature", {"features_dim": int(features_dim)}
            self.decoder: nn.Module = NatureDecoder(self.latent_dim + self.num_classes, self.data_shape, features_dim)
        elif len(self.data_shape) == 1:
            self.torso = MLPEncoder(space, hidden_sizes, activation)
            self.encoder_name = "mlp"
            self.encoder_options = {"hidden_sizes": [int(h) for h in hidden_sizes], "activation": activation}
            self.decoder = mlp(self.latent_dim + self.num_classes, list(hidden_sizes)[::-1], self.data_shape[0],
                               activation)
        else:
            raise ValueError(f"a VAE takes vectors [D] or images [C, H, W], got data_shape {self.data_shape}")
        self.mean_head = Linear(self.torso.out_dim + self.num_classes, self.latent_dim)
        self.logvar_head = Linear(self.torso.out_dim + self.num_classes, self.latent_dim)
        if likelihood == "gaussian":
            self.log_scale = nn.Parameter(torch.zeros(self.data_shape))

    # ----------------------------------------------------------------- the model
    def posterior(self, x: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of q(z | x[, label]), each ``[B, latent_dim]``."""
        h = torch.cat([self.torso(x), label_code(labels, self.num_classes, x.shape[0], x.device)], dim=1)
        return self.mean_head(h), self.logvar_head(h)

    def decoder_output(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Bernoulli logits or Gaussian means of p(x | z[, label]), shaped like the data."""
        code = label_code(labels, self.num_classes, z.shape[0], z.device)
        return self.decoder(torch.cat([z, code], dim=1)).reshape(-1, *self.data_shape)

    def reconstruction_log_likelihood(self, x: Tensor, output: Tensor) -> Tensor:
        """log p(x | z) per example, summed over data dimensions."""
        target = unit_interval(x)
        if self.likelihood == "bernoulli":
            log_p = -nn.functional.binary_cross_entropy_with_logits(output, target, reduction="none")
        else:
            log_p = torch.distributions.Normal(output, self.log_scale.exp()).log_prob(target)
        return log_p.flatten(1).sum(dim=1)

    def negative_elbo(self, x: Tensor, labels: Tensor | None = None,
                      beta: float = 1.0) -> tuple[Tensor, Tensor, Tensor]:
        """Per-example ``(-ELBO_beta, -log p(x|z), KL)`` with one reparameterised sample of z.

        With ``beta = 1`` the first term is an upper bound on -log p(x) (in nats).
        """
        mean, logvar = self.posterior(x, labels)
        z = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
        reconstruction = -self.reconstruction_log_likelihood(x, self.decoder_output(z, labels))
        kl = gaussian_kl(mean, logvar)
        return reconstruction + beta * kl, reconstruction, kl

    def loss(self, x: Tensor, labels: Tensor | None) -> tuple[Tensor, dict[str, float]]:
        objective, reconstruction, kl = self.negative_elbo(x, labels, self.beta)
        loss = objective.mean()
        return loss, {"loss": loss.item(), "reconstruction": reconstruction.mean().item(), "kl": kl.mean().item()}

    def check_data(self, data: Tensor, labels: Tensor | None) -> tuple[Tensor, Tensor | None]:
        data, labels = super().check_data(data, labels)
        if self.likelihood == "bernoulli":
            scaled = unit_interval(data)
            if scaled.min() < 0 or scaled.max() > 1:
                raise ValueError("a Bernoulli decoder needs data in [0, 1] (or uint8 pixels)")
        return data, labels

    # ----------------------------------------------------------------- using it
    @torch.no_grad()
    def encode(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """Posterior means ``[B, latent_dim]``."""
        labels = self.check_labels(labels, x.shape[0])
        return self.posterior(x.to(self.device), labels)[0]

    @torch.no_grad()
    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Decoder means: probabilities (Bernoulli) or Gaussian means, shaped like the data."""
        labels = self.check_labels(labels, z.shape[0])
        output = self.decoder_output(z.to(self.device), labels)
        return torch.sigmoid(output) if self.likelihood == "bernoulli" else output

    @torch.no_grad()
    def sample(self, n: int, labels: Tensor | None = None) -> Tensor:
        """Decoder means at ``n`` draws of z ~ N(0, I) (the usual picture of a VAE's samples)."""
        return self.decode(torch.randn(n, self.latent_dim, device=self.device), labels)

    def as_encoder(self) -> Encoder:
        """The posterior mean as an ``Encoder`` with ``out_dim = latent_dim``, sharing these weights."""
        if self.num_classes:
            raise ValueError("a conditional VAE's posterior needs labels, so it cannot serve as an encoder")
        return PosteriorMeanEncoder(self.torso, self.mean_head)

    def encoder_for_agents(self) -> tuple[Encoder, str, dict]:
        """The torso, which an agent loads as a ``nature`` (images) or ``mlp`` (vectors) encoder."""
        return self.torso, self.encoder_name, self.encoder_options
