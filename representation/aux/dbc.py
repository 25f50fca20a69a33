"""DBC: deep bisimulation for control (Zhang, McAllister, Calandra, Gal & Levine 2021).

The L1 distance between latent states is regressed onto the on-policy bisimulation metric
(Section 4, eq. 4):

    J(phi) = ( ||z_i - z_j||_1 - |r_i - r_j| - gamma * W2(P_hat(.|z_bar_i, a_i), P_hat(.|z_bar_j, a_j)) )^2

over random pairs ``(i, j)`` of the batch (a permutation of it), where ``z_bar`` is the
stop-gradient latent and ``P_hat`` a learned diagonal-Gaussian next-latent model. For diagonal
Gaussians ``W2^2 = ||mu_i - mu_j||^2 + ||sigma_i - sigma_j||^2`` (Givens & Shortt 1984), so the
whole target is a batched closed form computed without gradient.

The latent model is trained alongside (Section 4 and the authors' code): the Gaussian negative
log-likelihood of the detached ``phi(s')`` under ``P_hat(.|phi(s), a)``, and a reward model that
decodes ``r`` from a sample of the predicted next latent (squared error). Both losses also
train the encoder through ``phi(s)``; the bisimulation term is weighted by ``bisim_coef``
(0.5 in the authors' code). ``gamma`` defaults to the agent's discount. With an n-step replay
buffer ``r`` sums the k <= n rewards of a transition and ``s'`` lies k steps ahead, so the W2 term
is discounted by ``gamma ** k``: the metric of the k-step transitions the agent learns from.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from gymnasium import spaces
from torch import Tensor, nn

from representation.aux.base import (AuxObjective, action_dim, action_features, check_non_negative, check_positive,
                                     encode_pair, register_aux)
from representation.encoders import Encoder
from representation.ssl.heads import mlp_head

if TYPE_CHECKING:
    from replay import Batch


def gaussian_w2(mean_i: Tensor, std_i: Tensor, mean_j: Tensor, std_j: Tensor) -> Tensor:
    """2-Wasserstein distance ``[B]`` between diagonal Gaussians given by ``[B, D]`` means and stds."""
    return ((mean_i - mean_j).square().sum(dim=1) + (std_i - std_j).square().sum(dim=1)).sqrt()


class GaussianLatentModel(nn.Module):
    """``P_hat(.|z, a)``: a diagonal Gaussian whose std lies in ``[min_std, max_std]`` (DBC's bounds)."""

    def __init__(self, in_dim: int, latent_dim: int, hidden_dim: int, min_std: float = 1e-4, max_std: float = 10.0):
        super().__init__()
        self.net = mlp_head(in_dim, hidden_dim, 2 * latent_dim, batch_norm=False)
        self.min_std, self.max_std = min_std, max_std

    def forward(self, inputs: Tensor) -> tuple[Tensor, Tensor]:
        mean, raw_std = self.net(inputs).chunk(2, dim=1)
        return mean, self.min_std + (self.max_std - self.min_std) * torch.sigmoid(raw_std)


@register_aux
class DBC(AuxObjective):
    name = "dbc"
    needs_next_obs = True
    agent_defaults = ("gamma",)

    def __init__(self, encoder: Encoder, observation_space: spaces.Space, action_space: spaces.Space,
                 gamma: float = 0.99, bisim_coef: float = 0.5, hidden_dim: int = 256):
        super().__init__()
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"dbc option gamma must be in [0, 1], got {gamma}")
        check_non_negative(bisim_coef, "bisim_coef", self.name)
        check_positive(hidden_dim, "hidden_dim", self.name)
        self.action_space = action_space
        self.gamma, self.bisim_coef = float(gamma), float(bisim_coef)
        inputs = encoder.out_dim + action_dim(action_space, self.name)
        self.transition_model = GaussianLatentModel(inputs, encoder.out_dim, hidden_dim)
        self.reward_model = mlp_head(encoder.out_dim, hidden_dim, 1, batch_norm=False)

    @torch.no_grad()
    def bisimulation_target(self, latent: Tensor, action: Tensor, reward: Tensor, partner: Tensor,
                            reward_steps: Tensor | None = None) -> Tensor:
        """``|r_i - r_j| + gamma ** k_i * W2`` for each ``i`` and ``j = partner[i]`` (eq. 4's target),
        ``k`` the ``[B]`` env steps each transition spans (None: one each)."""
        mean, std = self.transition_model(torch.cat([latent, action], dim=1))
        w2 = gaussian_w2(mean, std, mean[partner], std[partner])
        discount = self.gamma if reward_steps is None else self.gamma ** reward_steps.to(w2.dtype)
        return (reward - reward[partner]).abs() + discount * w2

    def loss(self, batch: Batch, encoder: Encoder, latent: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        # phi(s') is only ever a target here (detached), so it is encoded without autograd.
        latent, next_latent = encode_pair(encoder, batch, self.name, latent, next_gradient=False)
        action = action_features(batch.action, self.action_space)
        reward = batch.reward.float()
        partner = torch.randperm(latent.shape[0], device=latent.device)
        target = self.bisimulation_target(latent.detach(), action, reward, partner, batch.reward_steps)
        latent_distance = (latent - latent[partner]).abs().sum(dim=1)
        bisim_loss = (latent_distance - target).square().mean()

        mean, std = self.transition_model(torch.cat([latent, action], dim=1))
        transition_loss = (0.5 * ((mean - next_latent) / std).square() + std.log()).mean()
        predicted_next = mean + std * torch.randn_like(std)
        reward_loss = (self.reward_model(predicted_next).squeeze(1) - reward).square().mean()

        loss = self.bisim_coef * bisim_loss + transition_loss + reward_loss
        return loss, {"aux/dbc_bisim_loss": bisim_loss.detach(), "aux/dbc_transition_loss": transition_loss.detach(),
                      "aux/dbc_reward_loss": reward_loss.detach(), "aux/dbc_loss": loss.detach()}
