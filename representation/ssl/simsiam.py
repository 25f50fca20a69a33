"""SimSiam (Chen & He 2021): one shared network, a predictor on one branch and a stop-gradient
on the other; no negatives and no momentum encoder."""
from __future__ import annotations

import torch
from torch import Tensor

from representation.augmentations import Augmentation
from representation.encoders import Encoder
from representation.ssl.heads import mlp_head
from representation.ssl.losses import negative_cosine
from representation.ssl.method import SSLMethod


class SimSiam(SSLMethod):
    """``z = projector(encoder(view))``, ``p = predictor(z)``;
    ``L = D(p1, stopgrad(z2)) / 2 + D(p2, stopgrad(z1)) / 2`` (the paper's eq. 2 and Algorithm 1).

    Projector: 3 layers with BN on every layer including the output; predictor: a 2-layer
    bottleneck (the paper's Section 4.1). Widths are scaled down for RL-sized features.
    """

    def __init__(self, encoder: Encoder, augmentation: Augmentation | None = None, projection_dim: int = 256,
                 predictor_hidden_dim: int = 64):
        super().__init__(encoder, augmentation)
        self.projector = mlp_head(encoder.out_dim, projection_dim, projection_dim, num_layers=3,
                                  batch_norm=True, output_norm=True)
        self.predictor = mlp_head(projection_dim, predictor_hidden_dim, projection_dim, batch_norm=True)

    def loss(self, observations: Tensor) -> tuple[Tensor, dict[str, float]]:
        projections = self.projector(self.encoder(torch.cat(self.two_views(observations))))
        first_p, second_p = self.predictor(projections).chunk(2)
        first_z, second_z = projections.detach().chunk(2)  # the stop-gradient
        loss = 0.5 * negative_cosine(first_p, second_z) + 0.5 * negative_cosine(second_p, first_z)
        return loss, {"loss": loss.item()}
