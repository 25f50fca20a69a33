"""SimCLR (Chen, Kornblith, Norouzi & Hinton 2020): contrast two views of each sample against
the 2B - 2 other views in the batch."""
from __future__ import annotations

import torch
from torch import Tensor

from representation.augmentations import Augmentation
from representation.encoders import Encoder
from representation.ssl.heads import mlp_head
from representation.ssl.losses import nt_xent
from representation.ssl.method import SSLMethod


class SimCLR(SSLMethod):
    """``z = g(f(view))`` with an MLP projection head ``g``; NT-Xent on the pairs of views.

    The head only serves the loss (the paper's Section 4.2: features before it transfer
    better); ``self.encoder`` is the result.
    """

    def __init__(self, encoder: Encoder, augmentation: Augmentation | None = None, projection_dim: int = 128,
                 hidden_dim: int = 512, temperature: float = 0.5):
        super().__init__(encoder, augmentation)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.head = mlp_head(encoder.out_dim, hidden_dim, projection_dim, batch_norm=False)
        self.temperature = temperature

    def loss(self, observations: Tensor) -> tuple[Tensor, dict[str, float]]:
        first, second = self.two_views(observations)
        projections = self.head(self.encoder(torch.cat([first, second])))
        first_z, second_z = projections.chunk(2)
        loss = nt_xent(first_z, second_z, self.temperature)
        return loss, {"loss": loss.item()}
