"""DeepMDP: a latent reward and transition model on the encoder's features (Gelada et al. 2019).

The encoder ``phi`` and an action-conditioned latent model ``(R_bar, P_bar)`` minimise the
paper's two losses (Section 2.3, Definitions 2 and 3):

- reward: ``L_R = E |R(s, a) - R_bar(phi(s), a)|``;
- transition: ``L_P = E W(phi P(.|s, a), P_bar(.|phi(s), a))``; with a deterministic latent
  model and the sampled next state this is the Euclidean distance
  ``||phi(s') - P_bar(phi(s), a)||_2`` (the practical variant used in their Atari experiments).

The bounds that make these losses meaningful need ``R_bar`` and ``P_bar`` to be Lipschitz
(Section 3, Theorems 1-2); ``gradient_penalty > 0`` adds the one-sided gradient penalty of
Gulrajani et al. (2017, eq. 3; one-sided as Petzka et al. 2018) at random points between pairs
of latent states of the batch: ``E max(0, ||grad_z f(z_hat, a)|| - 1)^2``. For the vector
transition model ``f`` is its output along a random unit direction, an unbiased probe of its
Jacobian.

With an n-step replay buffer ``reward`` and ``next_obs`` span n steps, so the latent model
learns the n-step model.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor

from representation.aux.base import (AuxObjective, action_dim, action_features, check_non_negative, check_positive,
                                     encode_pair, register_aux)
from representation.encoders import Encoder
from representation.ssl.heads import mlp_head

if TYPE_CHECKING:
    from replay import Batch


def lipschitz_penalty(function, points: Tensor) -> Tensor:
    """``E max(0, ||grad f(x)|| - 1)^2`` for a scalar-per-sample ``function`` at ``points`` ``[B, D]``."""
    points = points.requires_grad_(True)
    (gradient,) = torch.autograd.grad(function(points).sum(), points, create_graph=True)
    return F.relu(gradient.norm(dim=1) - 1.0).square().mean()


@register_aux
class DeepMDP(AuxObjective):
    name = "deepmdp"
    needs_next_obs = True

    def __init__(self, encoder: Encoder, observation_space: spaces.Space, action_space: spaces.Space,
                 hidden_dim: int = 256, reward_coef: float = 1.0, transition_coef: float = 1.0,
                 stop_gradient_target: bool = False, gradient_penalty: float = 0.0):
        """``stop_gradient_target``: treat ``phi(s')`` as a fixed target (the paper lets the
        gradient through both sides). ``gradient_penalty``: weight of the Lipschitz penalty."""
        super().__init__()
        check_positive(hidden_dim, "hidden_dim", self.name)
        for name, value in (("reward_coef", reward_coef), ("transition_coef", transition_coef),
                            ("gradient_penalty", gradient_penalty)):
            check_non_negative(value, name, self.name)
        self.action_space = action_space
        inputs = encoder.out_dim + action_dim(action_space, self.name)
        self.reward_model = mlp_head(inputs, hidden_dim, 1, batch_norm=False)
        self.transition_model = mlp_head(inputs, hidden_dim, encoder.out_dim, batch_norm=False)
        self.reward_coef, self.transition_coef = float(reward_coef), float(transition_coef)
        self.stop_gradient_target = bool(stop_gradient_target)
        self.gradient_penalty = float(gradient_penalty)

    def loss(self, batch: Batch, encoder: Encoder, latent: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        latent, next_latent = encode_pair(encoder, batch, self.name, latent,
                                          next_gradient=not self.stop_gradient_target)
        action = action_features(batch.action, self.action_space)
        inputs = torch.cat([latent, action], dim=1)
        reward_loss = (self.reward_model(inputs).squeeze(1) - batch.reward.float()).abs().mean()
        transition_loss = (self.transition_model(inputs) - next_latent).norm(dim=1).mean()
        loss = self.reward_coef * reward_loss + self.transition_coef * transition_loss
        metrics = {"aux/deepmdp_reward_loss": reward_loss.detach(),
                   "aux/deepmdp_transition_loss": transition_loss.detach()}
        if self.gradient_penalty > 0:
            penalty = self.lipschitz_penalties(latent.detach(), action)
            loss = loss + self.gradient_penalty * penalty
            metrics["aux/deepmdp_gradient_penalty"] = penalty.detach()
        metrics["aux/deepmdp_loss"] = loss.detach()
        return loss, metrics

    def lipschitz_penalties(self, latent: Tensor, action: Tensor) -> Tensor:
        """Penalties of both models at points between random pairs of latent states."""
        mix = torch.rand(latent.shape[0], 1, device=latent.device)
        points = mix * latent + (1 - mix) * latent[torch.randperm(latent.shape[0], device=latent.device)]
        direction = F.normalize(torch.randn_like(latent), dim=1)

        def reward(z: Tensor) -> Tensor:
            return self.reward_model(torch.cat([z, action], dim=1)).squeeze(1)

        def transition_along_direction(z: Tensor) -> Tensor:
            return (self.transition_model(torch.cat([z, action], dim=1)) * direction).sum(dim=1)

        return (lipschitz_penalty(reward, points.clone()) +
                lipschitz_penalty(transition_along_direction, points.clone()))
