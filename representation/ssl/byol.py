"""BYOL (Grill et al. 2020): an online network predicts a slowly moving target network's
projection of another view; no negatives."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from representation.augmentations import Augmentation
from representation.encoders import Encoder
from representation.ssl.heads import frozen_copy, mlp_head, momentum_update_
from representation.ssl.losses import normalized_mse
from representation.ssl.method import SSLMethod


class BYOL(SSLMethod):
    """Online ``encoder -> projector -> predictor``; target ``target_encoder -> target_projector``.

    The loss is the symmetrised ``normalized_mse`` (the paper's eq. 2 plus its swapped-view
    term). After each step the target moves by ``tau``, which rises from ``base_momentum`` to 1
    with the paper's cosine schedule ``tau = 1 - (1 - tau_base) (cos(pi k / K) + 1) / 2``.
    Widths are scaled down from the paper's 4096 / 256 for RL-sized features.
    """

    def __init__(self, encoder: Encoder, augmentation: Augmentation | None = None, projection_dim: int = 128,
                 hidden_dim: int = 512, base_momentum: float = 0.996):
        super().__init__(encoder, augmentation)
        if not 0.0 <= base_momentum <= 1.0:
            raise ValueError(f"base_momentum must lie in [0, 1], got {base_momentum}")
        self.projector = mlp_head(encoder.out_dim, hidden_dim, projection_dim, batch_norm=True)
        self.predictor = mlp_head(projection_dim, hidden_dim, projection_dim, batch_norm=True)
        self.target_encoder = frozen_copy(encoder)
        self.target_projector = frozen_copy(self.projector)
        self.base_momentum = base_momentum
        self.momentum = base_momentum

    def loss(self, observations: Tensor) -> tuple[Tensor, dict[str, float]]:
        views = torch.cat(self.two_views(observations))
        first_p, second_p = self.predictor(self.projector(self.encoder(views))).chunk(2)
        with torch.no_grad():
            first_t, second_t = self.target_projector(self.target_encoder(views)).chunk(2)
        loss = normalized_mse(first_p, second_t) + normalized_mse(second_p, first_t)
        return loss, {"loss": loss.item(), "momentum": self.momentum}

    def after_step(self, progress: float) -> None:
        self.momentum = 1.0 - (1.0 - self.base_momentum) * (math.cos(math.pi * progress) + 1.0) / 2.0
        momentum_update_(self.target_encoder, self.encoder, self.momentum)
        momentum_update_(self.target_projector, self.projector, self.momentum)
