"""PPO, A2C and TRPO for K seeds in one process (``agents.multi_seed``): stacked actor-critics, each
seed's actions drawn with its own generator, and a rollout buffer whose minibatches keep the
seeds apart."""
from __future__ import annotations

import torch
from gymnasium import spaces
from torch import Tensor, nn
from torch.distributions import Categorical, Independent

from agents.a2c import A2C
from agents.actor_critic import ActorCritic, evaluate_policy
from agents.multi_seed import MultiSeed
from agents.on_policy import OnPolicyConfig
from agents.ppo import PPO
from agents.seed_stack import SeedStack
from agents.trpo import TRPO, split_parameters
from replay.grouped_rollout_buffer import GroupedRolloutBuffer


class StackedActorCritic(nn.Module):
    """K ``ActorCritic`` networks called on ``[K, B, ...]`` observations (row k by network k)."""

    def __init__(self, networks: list[ActorCritic]):
        super().__init__()
        self.stack = SeedStack(networks)
        self.distribution = networks[0].policy.distribution
        self.head_class = type(networks[0].policy)  # the heads' functions of distribution inputs

    def forward(self, obs: Tensor):
        dist_inputs, value = self.stack.call("dist_inputs_and_value", obs)
        return self.distribution(*dist_inputs), value

    def policy_distribution(self, obs: Tensor):
        return self.distribution(*self.stack.call("dist_inputs", obs))

    def evaluate_actions(self, obs: Tensor, action: Tensor,
                         with_entropy: bool = True) -> tuple[Tensor, Tensor | None, Tensor]:
        """``ActorCritic.evaluate_actions`` of each network on its row of ``obs`` and ``action``."""
        dist_inputs, value = self.stack.call("dist_inputs_and_value", obs)
        return (*evaluate_policy(self.head_class, action, dist_inputs, with_entropy), value)

    def value(self, obs: Tensor) -> Tensor:
        return self.stack.call("value", obs)


class MultiSeedOnPolicy(MultiSeed):
    """Acting and rollout storage of an on-policy agent (``self.net`` an ``ActorCritic``) for K seeds."""

    stacked_networks = {"net": StackedActorCritic}

    def __init__(self, config: OnPolicyConfig, observation_space: spaces.Space, action_space: spaces.Space,
                 seeds: list[int]):
        if getattr(config, "target_kl", None):
            raise ValueError("--target-kl stops all seeds' epochs together: not available with --num-seeds")
        super().__init__(config, observation_space, action_space, seeds)

    def _sample(self, dist: Categorical | Independent) -> Tensor:
        """One action per env, seed k's drawn with seed k's generator (inverse-CDF / reparameterised)."""
        if isinstance(dist, Categorical):
            return self.seed_categorical(dist.probs)
        normal = dist.base_dist
        return normal.loc + normal.scale * self.seed_normal(normal.loc.shape[1:])

    @torch.no_grad()
    def act(self, obs: Tensor, explore: bool = True) -> Tensor:
        dist, _ = self.net(self._by_seed(obs))
        action = (self._sample(dist) if explore else dist.mode).flatten(0, 1)
        return self.clip_action(action) if self.clip_action is not None else action

    @torch.no_grad()
    def rollout_action(self, obs: Tensor, step: int) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        if self.values_per_rollout:
            extras, dist = {}, self.net.policy_distribution(self._by_seed(obs))
        else:
            dist, value = self.net(self._by_seed(obs))
            extras = {"value": value.flatten()}
        action = self._sample(dist)
        extras["log_prob"] = dist.log_prob(action).flatten()
        action = action.flatten(0, 1)
        env_action = self.clip_action(action) if self.clip_action is not None else action
        return action, env_action, extras

    def state_value(self, obs: Tensor) -> Tensor:
        return self.net.value(self._by_seed(obs)).flatten()

    def row_values(self, obs: Tensor, rows: Tensor) -> Tensor:
        """V of the rows ``rows`` of ``obs``, every seed's network on its own rows of all of them."""
        return self.state_value(obs).index_select(0, rows)

    def rollout_state_values(self, obs: Tensor) -> Tensor:
        """``[T, K*n, ...]`` -> ``[T, K*n]``, network k on its seed's ``T*n`` observations."""
        steps = obs.shape[0]
        by_seed = obs.unflatten(1, (self.num_seeds, -1)).movedim(1, 0).flatten(1, 2)
        return self.net.value(by_seed).unflatten(1, (steps, -1)).movedim(0, 1).flatten(1, 2)

    def setup_training(self, num_envs: int) -> None:
        self.buffer = GroupedRolloutBuffer(self.config.num_steps, num_envs, self.observation_space,
                                           self.action_space, self.device, self.generators)


class MultiSeedPPO(MultiSeedOnPolicy, PPO):
    """PPO for K seeds at once."""

    seed_agent_class = PPO


class MultiSeedA2C(MultiSeedOnPolicy, A2C):
    """A2C for K seeds at once."""

    seed_agent_class = A2C


class MultiSeedTRPO(MultiSeedOnPolicy, TRPO):
    """TRPO for K seeds at once: one conjugate-gradient solve and one line search per seed, run
    side by side on ``[K, P]`` parameter vectors."""

    seed_agent_class = TRPO

    @property
    def seed_shape(self) -> tuple[int, ...]:
        return (self.num_seeds,)

    def stack_seeds(self) -> None:
        super().stack_seeds()
        self.policy_params = self._stacked_parameters()[0]

    def optimized_parameters(self) -> dict[str, list[Tensor]]:
        return {"optimizer": self._stacked_parameters()[1]}

    def _stacked_parameters(self) -> tuple[list[Tensor], list[Tensor]]:
        return split_parameters(zip(self.net.stack.param_names, self.net.stack.stacked))
