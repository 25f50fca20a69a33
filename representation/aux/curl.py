"""CURL: contrastive unsupervised representations for RL (Srinivas, Laskin & Abbeel 2020).

Two random augmentations of each observation give a query, encoded by the agent's (online)
encoder, and a key, encoded by a momentum (EMA) copy of it (He et al. 2020, MoCo). The
similarity is bilinear, ``q^T W k`` (Srinivas et al. 2020, Section 4.4), and the loss is
InfoNCE with the other keys of the batch as negatives (Section 4.2, eq. 2): the softmax
cross-entropy over the ``[B, B]`` logits whose targets are the diagonal, which is exactly
``n_pair_loss(q W, k)``.

As in CURL's encoder, a linear layer and a LayerNorm project the encoder's features to a
small ``projection_dim`` before the bilinear product (the key side uses their momentum copy),
which keeps the logits' scale independent of the encoder's width.

With ``share_anchor`` (the default), an off-policy agent (DQN, SAC) trains on the query's
augmented view and the query is the agent's own encoding of it, as in CURL, which passes the
query observations to the RL algorithm (Srinivas et al. 2020, Figure 2): the objective then
adds only the key's forward pass. On-policy agents always train on the observations they acted
on (their stored log-probabilities are of those), so there the query is its own encoder pass.

Augmentations run on the batch's device: random shifts for image stacks (CURL's Atari
variant and DrQ, Kostrikov et al. 2020), Gaussian noise for float vector observations (our
choice, so the objective also applies to MLP encoders on classic control).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn

from representation.augmentations import Augmentation, GaussianNoise, RandomShift
from representation.aux.base import AuxObjective, check_non_negative, register_aux
from representation.encoders import Encoder, is_image_space
from representation.linear import Linear
from representation.ssl.heads import frozen_copy, momentum_update_
from representation.ssl.losses import n_pair_loss

if TYPE_CHECKING:
    from replay import Batch


def curl_augmentation(observation_space: spaces.Space, pad: int, noise_std: float) -> Augmentation:
    if is_image_space(observation_space):
        return RandomShift(pad)
    if (isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 1
            and np.issubdtype(observation_space.dtype, np.floating)):
        return GaussianNoise(noise_std)
    raise ValueError(f"the curl objective needs image [C, H, W] or float vector observations, got {observation_space}")


@register_aux
class CURL(AuxObjective):
    name = "curl"

    def __init__(self, encoder: Encoder, observation_space: spaces.Space, action_space: spaces.Space,
                 tau: float = 0.05, projection_dim: int = 50, pad: int = 4, noise_std: float = 0.1,
                 share_anchor: bool = True):
        """``tau``: how far the momentum encoder moves towards the online one per update (CURL's
        0.05 for DMControl; its Atari runs used 0.001). ``pad``: random-shift range in pixels.
        ``noise_std``: augmentation noise for vector observations. ``share_anchor``: off-policy
        agents train on the query view (see above)."""
        super().__init__()
        if not 0.0 < tau <= 1.0:
            raise ValueError(f"curl option tau must be in (0, 1], got {tau}")
        if projection_dim < 1:
            raise ValueError(f"curl option projection_dim must be >= 1, got {projection_dim}")
        check_non_negative(pad, "pad", "curl")
        check_non_negative(noise_std, "noise_std", "curl")
        self.tau = float(tau)
        self.share_anchor = bool(share_anchor)
        self.anchor: tuple[Tensor, Tensor] | None = None  # (query view handed to the agent, its observations)
        self.augment = curl_augmentation(observation_space, int(pad), float(noise_std))
        self.projection = nn.Sequential(Linear(encoder.out_dim, projection_dim), nn.LayerNorm(projection_dim))
        self.key_encoder = frozen_copy(encoder)
        self.key_projection = frozen_copy(self.projection)
        # CURL initialises W uniformly in [0, 1) (its curl_sac.py: torch.rand(z_dim, z_dim)).
        self.bilinear = nn.Parameter(torch.rand(projection_dim, projection_dim))

    def loss(self, batch: Batch, encoder: Encoder, latent: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        anchor, self.anchor = self.anchor, None
        if anchor is not None and anchor[0] is batch.obs:  # the agent trained on the query view
            obs = anchor[1]
            query = latent if latent is not None else encoder(batch.obs)
        else:
            obs = batch.obs
            query = encoder(self.augment(obs))
        query = self.projection(query)
        with torch.no_grad():
            key = self.key_projection(self.key_encoder(self.augment(obs)))
        loss = n_pair_loss(query @ self.bilinear, key)  # logits[i, j] = q_i^T W k_j
        return loss, {"aux/curl_loss": loss.detach()}

    def view_for_agent(self, obs: Tensor) -> Tensor:
        if not self.share_anchor:
            return obs
        query_view = self.augment(obs)
        self.anchor = (query_view, obs)
        return query_view

    def after_update(self, encoder: Encoder) -> None:
        # key <- (1 - tau) key + tau online (He et al. 2020, eq. 2 with m = 1 - tau).
        momentum_update_(self.key_encoder, encoder, 1.0 - self.tau)
        momentum_update_(self.key_projection, self.projection, 1.0 - self.tau)
