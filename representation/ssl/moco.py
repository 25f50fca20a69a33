"""MoCo v2 (He, Fan, Wu, Xie & Girshick 2020; Chen, Fan, Girshick & He 2020, "Improved
baselines"): a query encoder trained against keys from a slowly moving copy of itself, with a
queue of past keys as negatives."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from representation.augmentations import Augmentation
from representation.encoders import Encoder
from representation.ssl.heads import frozen_copy, mlp_head, momentum_update_
from representation.ssl.losses import info_nce
from representation.ssl.method import SSLMethod


class MoCo(SSLMethod):
    """Query network ``encoder + head``, key network its momentum copy, InfoNCE over the queue.

    Follows the paper's Algorithm 1: keys of the current batch are enqueued (and the oldest
    dequeued) after the optimiser step, together with the momentum update
    ``key = m * key + (1 - m) * query``. ``queue`` holds the newest ``queue_size`` keys,
    oldest first. The queue starts as random unit vectors, as in the paper's code. Defaults are
    the paper's except the smaller queue (RL datasets are small) and heads sized for RL features.
    There is no shuffled BatchNorm: the heads have none and the encoders here have none either.
    """

    def __init__(self, encoder: Encoder, augmentation: Augmentation | None = None, queue_size: int = 4096,
                 momentum: float = 0.999, temperature: float = 0.2, projection_dim: int = 128,
                 hidden_dim: int = 512):
        super().__init__(encoder, augmentation)
        if queue_size < 1 or not 0.0 <= momentum <= 1.0 or temperature <= 0:
            raise ValueError(f"MoCo needs queue_size >= 1, momentum in [0, 1] and temperature > 0, got "
                             f"{queue_size}, {momentum}, {temperature}")
        self.head = mlp_head(encoder.out_dim, hidden_dim, projection_dim, batch_norm=False)
        self.key_encoder = frozen_copy(encoder)
        self.key_head = frozen_copy(self.head)
        self.momentum = momentum
        self.temperature = temperature
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, projection_dim), dim=1))
        self._pending_keys: Tensor | None = None

    def loss(self, observations: Tensor) -> tuple[Tensor, dict[str, float]]:
        query_view, key_view = self.two_views(observations)
        queries = F.normalize(self.head(self.encoder(query_view)), dim=1)
        with torch.no_grad():
            keys = F.normalize(self.key_head(self.key_encoder(key_view)), dim=1)
        loss = info_nce(queries, keys, self.queue, self.temperature)
        self._pending_keys = keys
        return loss, {"loss": loss.item()}

    def after_step(self, progress: float) -> None:
        momentum_update_(self.key_encoder, self.encoder, self.momentum)
        momentum_update_(self.key_head, self.head, self.momentum)
        if self._pending_keys is not None:
            self.enqueue(self._pending_keys)
            self._pending_keys = None

    @torch.no_grad()
    def enqueue(self, keys: Tensor) -> None:
        """Appends ``keys`` ``[B, D]`` and drops the oldest so the queue keeps its size."""
        self.queue = torch.cat([self.queue, keys.to(self.queue.dtype)])[-self.queue.shape[0]:]
