"""K independent PPO or A2C runs (one per seed) trained in one process as one batched run.

The K seeds' networks are stacked (``agents.seed_stack``) and called together on a torch-native
env whose K seed groups of N envs each reset from their own seed; every random draw a seed makes
(initial weights, reset states, actions, minibatch order) comes from that seed's own generator,
and every loss is a per-seed mean, so seed k of a K-seed run computes exactly what seed k of a
one-seed run (``--num-seeds 1``) computes, only K times as many at once. A plain run of the same
seed starts from the same weights and states, but batched and unbatched matrix products round
differently and the stacked networks' tanh is computed through the sigmoid (``SeedStack``), so
the two drift apart by float round-off during training.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

import torch
from gymnasium import spaces
from torch import Tensor, nn
from torch.distributions import Categorical, Independent

from agents.a2c import A2C
from agents.actor_critic import ActorCritic
from agents.base import Agent
from agents.on_policy import OnPolicyConfig
from agents.ppo import PPO
from agents.seed_stack import SeedStack
from replay.grouped_rollout_buffer import GroupedRolloutBuffer


class StackedActorCritic(nn.Module):
    """K ``ActorCritic`` networks called on ``[K, B, ...]`` observations (row k by network k)."""

    def __init__(self, networks: list[ActorCritic]):
        super().__init__()
        self.stack = SeedStack(networks)
        self.distribution = networks[0].policy.distribution
        self.log_prob_and_entropy = networks[0].policy.log_prob_and_entropy

    def forward(self, obs: Tensor):
        dist_inputs, value = self.stack.call("dist_inputs_and_value", obs)
        return self.distribution(*dist_inputs), value

    def evaluate_actions(self, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``ActorCritic.evaluate_actions`` of each network on its row of ``obs`` and ``action``."""
        dist_inputs, value = self.stack.call("dist_inputs_and_value", obs)
        return (*self.log_prob_and_entropy(action, *dist_inputs), value)

    def value(self, obs: Tensor) -> Tensor:
        return self.stack.call("value", obs)


class MultiSeed:
    """An on-policy agent for ``seeds`` at once over K seed groups of envs; the Runner trains it
    like one agent and writes one run directory per seed (``seed_agents()`` gives each seed as a
    plain agent). Mixed in before the agent's class, whose losses must be per-seed means over
    the last dimension: ``[K]`` losses, summed for the backward pass."""

    seed_agent_class: ClassVar[type[Agent]]  # the agent each seed is

    def __init__(self, config: OnPolicyConfig, observation_space: spaces.Space, action_space: spaces.Space,
                 seeds: list[int]):
        if len(seeds) < 1 or len(set(seeds)) != len(seeds):
            raise ValueError(f"--num-seeds needs distinct seeds, got {seeds}")
        if config.aux != "none":
            raise ValueError("auxiliary objectives (--aux) are not available with --num-seeds")
        if getattr(config, "target_kl", None):
            raise ValueError("--target-kl stops all seeds' epochs together: not available with --num-seeds")
        Agent.__init__(self, config, observation_space, action_space)
        self.seeds = list(seeds)
        self.num_seeds = len(seeds)
        # Built one by one with their own seeds: the initial weights of single-seed runs.
        self._per_seed = [self.seed_agent_class(replace(config, seed=seed), observation_space, action_space)
                          for seed in seeds]
        self.net = StackedActorCritic([agent.net for agent in self._per_seed])
        self.clip_action = self._per_seed[0].clip_action
        # The single-seed agent's optimiser on the stacked parameters; Adam and RMSprop act
        # elementwise, so each seed's slice steps exactly as it would alone.
        optimizer = self._per_seed[0].optimizer
        self.optimizer = type(optimizer)([p for p in self.net.parameters() if p.requires_grad], **optimizer.defaults)
        self.generators = [torch.Generator(device=self.device).manual_seed(seed) for seed in seeds]
        self.buffer = None
        self.iteration = 0

    # ------------------------------------------------------------------ acting
    def _by_seed(self, tensor: Tensor) -> Tensor:
        return tensor.unflatten(0, (self.num_seeds, -1))

    def _sample(self, dist: Categorical | Independent) -> Tensor:
        """One action per env, seed k's drawn with seed k's generator (inverse-CDF / reparameterised)."""
        if isinstance(dist, Categorical):
            shape = dist.probs.shape[1:-1]
            uniform = torch.stack([torch.rand(shape, generator=g, device=g.device) for g in self.generators])
            cdf = dist.probs.cumsum(-1)
            return torch.searchsorted(cdf, uniform.unsqueeze(-1)).squeeze(-1).clamp_max(cdf.shape[-1] - 1)
        normal = dist.base_dist
        shape = normal.loc.shape[1:]
        noise = torch.stack([torch.randn(shape, generator=g, device=g.device) for g in self.generators])
        return normal.loc + normal.scale * noise

    @torch.no_grad()
    def act(self, obs: Tensor, explore: bool = True) -> Tensor:
        dist, _ = self.net(self._by_seed(obs))
        action = (self._sample(dist) if explore else self._per_seed[0].net.policy.mode(dist)).flatten(0, 1)
        return self.clip_action(action) if self.clip_action is not None else action

    @torch.no_grad()
    def rollout_action(self, obs: Tensor, step: int) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        dist, value = self.net(self._by_seed(obs))
        action = self._sample(dist)
        log_prob = dist.log_prob(action)
        action = action.flatten(0, 1)
        env_action = self.clip_action(action) if self.clip_action is not None else action
        return action, env_action, {"log_prob": log_prob.flatten(), "value": value.flatten()}

    def state_value(self, obs: Tensor) -> Tensor:
        return self.net.value(self._by_seed(obs)).flatten()

    # ---------------------------------------------------------------- training
    def setup_training(self, num_envs: int) -> None:
        self.buffer = GroupedRolloutBuffer(self.config.num_steps, num_envs, self.observation_space,
                                           self.action_space, self.device, self.generators)

    def clip_gradients(self, optimizer: torch.optim.Optimizer, max_grad_norm: float) -> None:
        self.net.stack.clip_grad_norm_(max_grad_norm)

    def seed_agents(self) -> list[Agent]:
        for index, agent in enumerate(self._per_seed):
            self.net.stack.copy_into(index, agent.net)
        return list(self._per_seed)

    def training_state(self, include_buffer: bool = True) -> dict[str, Any]:
        return {**super().training_state(include_buffer), "generators": [g.get_state() for g in self.generators]}

    def load_training_state(self, state: dict[str, Any]) -> None:
        super().load_training_state(state)
        for generator, generator_state in zip(self.generators, state["generators"], strict=True):
            generator.set_state(generator_state)

    def payload(self) -> dict[str, Any]:
        return {**super().payload(), "seeds": self.seeds}


class MultiSeedPPO(MultiSeed, PPO):
    """PPO for K seeds at once."""

    seed_agent_class = PPO


class MultiSeedA2C(MultiSeed, A2C):
    """A2C for K seeds at once."""

    seed_agent_class = A2C


MULTI_SEED_AGENTS: dict[type[Agent], type[MultiSeed]] = {PPO: MultiSeedPPO, A2C: MultiSeedA2C}


def build_multi_seed(agent_cls: type[Agent], config: OnPolicyConfig, observation_space: spaces.Space,
                     action_space: spaces.Space, seeds: list[int]) -> MultiSeed:
    """The multi-seed version of ``agent_cls`` (PPO or A2C) over torch-native envs."""
    if agent_cls not in MULTI_SEED_AGENTS:
        raise ValueError(f"--num-seeds trains {' and '.join(cls.name for cls in MULTI_SEED_AGENTS)}; "
                         f"{agent_cls.name} runs one seed per process (scripts/compare.py runs many in parallel)")
    from envs.torch_envs import TORCH_ENVS

    if config.env not in TORCH_ENVS or config.backend == "gymnasium":
        raise ValueError(f"--num-seeds steps the seeds together in a torch-native env; {config.env} has none "
                         f"(choose from {', '.join(TORCH_ENVS)})")
    if config.normalize_obs or config.normalize_reward:
        raise ValueError("observation and reward normalisation are not available with --num-seeds")
    config.backend = "torch"
    return MULTI_SEED_AGENTS[agent_cls](config, observation_space, action_space, seeds)
