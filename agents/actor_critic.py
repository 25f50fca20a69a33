"""The actor-critic network every policy-gradient agent shares: any encoder, policy and value heads."""
from __future__ import annotations

from typing import TYPE_CHECKING

from gymnasium import spaces
from torch import Tensor, nn

from agents.networks import build_encoder, linear, orthogonal_init, policy_head

if TYPE_CHECKING:
    from agents.on_policy import OnPolicyConfig


class ActorCritic(nn.Module):
    """Policy and value heads on one shared encoder or on two encoders of the same kind."""

    batch_shape_agnostic = True  # every leading dimension is batch (``agents.seed_stack``)

    def __init__(self, config: OnPolicyConfig, observation_space: spaces.Space, action_space: spaces.Space):
        super().__init__()
        self.encoder = build_encoder(config, observation_space)
        pretrained = bool(config.encoder_checkpoint)
        if not pretrained:
            orthogonal_init(self.encoder)
        self.critic_encoder = None
        if not config.shared_encoder:
            self.critic_encoder = build_encoder(config, observation_space, load_checkpoint=False)
            if pretrained:
                self.critic_encoder.load_state_dict(self.encoder.state_dict())
            else:
                orthogonal_init(self.critic_encoder)
        self.policy = policy_head(self.encoder.out_dim, action_space, config.log_std_init)
        self.value_head = linear(self.encoder.out_dim, 1, gain=1.0)

    def value(self, obs: Tensor, features: Tensor | None = None) -> Tensor:
        if self.critic_encoder is not None:
            features = self.critic_encoder(obs)
        elif features is None:
            features = self.encoder(obs)
        return self.value_head(features).squeeze(-1)

    def forward(self, obs: Tensor):
        features = self.encoder(obs)
        return self.policy(features), self.value(obs, features)

    def policy_distribution(self, obs: Tensor):
        """pi(.|obs) alone, without the value."""
        return self.policy(self.encoder(obs))

    def dist_inputs(self, obs: Tensor) -> tuple[Tensor, ...]:
        """The tensors ``policy_distribution`` is built from (what batched copies return)."""
        return self.policy.dist_inputs(self.encoder(obs))

    def dist_inputs_and_value(self, obs: Tensor) -> tuple[tuple[Tensor, ...], Tensor]:
        """``forward`` with the policy as the tensors its distribution is built from."""
        features = self.encoder(obs)
        return self.policy.dist_inputs(features), self.value(obs, features)

    def evaluate_actions(self, obs: Tensor, action: Tensor,
                         with_entropy: bool = True) -> tuple[Tensor, Tensor | None, Tensor]:
        """``log pi(action|obs)``, the policy's entropy at ``obs`` (None without ``with_entropy``)
        and ``V(obs)``: what the policy-gradient losses take, without building the distribution."""
        dist_inputs, value = self.dist_inputs_and_value(obs)
        return (*evaluate_policy(self.policy, action, dist_inputs, with_entropy), value)


def evaluate_policy(head: nn.Module | type[nn.Module], action: Tensor, dist_inputs: tuple[Tensor, ...],
                    with_entropy: bool) -> tuple[Tensor, Tensor | None]:
    """The log-probability of ``action`` and, ``with_entropy``, the entropy, from the
    distribution's inputs, by a head of ``agents.networks`` or its class (both of their
    functions are static)."""
    if with_entropy:
        return head.log_prob_and_entropy(action, *dist_inputs)
    return head.log_prob(action, *dist_inputs), None
