"""K independent runs of one agent (one per seed) trained in one process as one batched run.

The K seeds' networks are stacked (``agents.seed_stack``) and called together on a torch-native
env whose K seed groups of N envs each reset from their own seed; every random draw a seed makes
(initial weights, reset states, actions, minibatch order or replay samples) comes from that
seed's own generator, and every loss is a per-seed mean, so seed k of a K-seed run computes
exactly what seed k of a one-seed run (``--num-seeds 1``) computes, only K times as many at once.
A plain run of the same seed starts from the same weights and states, but batched and unbatched
matrix products round differently and the stacked networks compute tanh through the sigmoid at
every size (``SeedStack``), a plain one only on large activations, so the two drift apart by
float round-off during training.

``agents.multi_seed_on_policy`` holds PPO, A2C and TRPO, ``agents.multi_seed_dqn`` DQN and
``agents.multi_seed_sac`` SAC.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from importlib import import_module
from typing import Any, ClassVar

import torch
from gymnasium import spaces
from torch import Tensor, nn

from agents.base import Agent
from agents.config import AgentConfig
from agents.flat_parameters import flat_optimizer
from agents.seed_stack import clip_grad_norm_per_copy_
from wrappers.normalize import RunningMeanStd

# The multi-seed version of each agent that has one, as ``module:Class`` (imported on first use).
MULTI_SEED_AGENTS: dict[str, str] = {
    "ppo": "agents.multi_seed_on_policy:MultiSeedPPO",
    "a2c": "agents.multi_seed_on_policy:MultiSeedA2C",
    "trpo": "agents.multi_seed_on_policy:MultiSeedTRPO",
    "dqn": "agents.multi_seed_dqn:MultiSeedDQN",
    "sac": "agents.multi_seed_sac:MultiSeedSAC",
}


class MultiSeed:
    """An agent for ``seeds`` at once over K seed groups of envs; the Runner trains it like one
    agent and writes one run directory per seed (``seed_agents()`` gives each seed as a plain
    agent). Mixed in before the agent's class, whose set-up runs first; its networks named in
    ``stacked_networks`` are then replaced by the stacks of the K seeds' own, and its optimiser by
    the same optimiser on the stacked parameters. The agent's losses must be per-seed means over
    the last dimension: ``[K]`` losses, summed for the backward pass."""

    seed_agent_class: ClassVar[type[Agent]]  # the agent each seed is
    #: Compiled, the stacks' steps keep the loss compiled alone (``Agent.gradient_step``).
    compiles_whole_steps: ClassVar[bool] = False
    #: The seed agent's networks that are stacked: attribute name -> what stacks K of them.
    stacked_networks: ClassVar[dict[str, Callable[[list[nn.Module]], nn.Module]]]

    def __init__(self, config: AgentConfig, observation_space: spaces.Space, action_space: spaces.Space,
                 seeds: list[int]):
        if len(seeds) < 1 or len(set(seeds)) != len(seeds):
            raise ValueError(f"--num-seeds needs distinct seeds, got {seeds}")
        if config.aux != "none":
            raise ValueError("auxiliary objectives (--aux) are not available with --num-seeds")
        super().__init__(config, observation_space, action_space)
        self.seeds = list(seeds)
        self.num_seeds = len(seeds)
        # Built one by one with their own seeds: the initial weights of single-seed runs.
        self._per_seed = [self.seed_agent_class(replace(config, seed=seed), observation_space, action_space)
                          for seed in seeds]
        self.stack_seeds()
        # Adam and RMSprop act elementwise, so each seed's slice steps exactly as it would alone;
        # but not under the fused CPU kernels, which vectorise over a whole stacked tensor and round
        # its scalar tail differently (C51's [K, 11] biases step differently for K = 2 and K = 3).
        # A seed agent's flat optimiser (agents.flat_parameters) steps all K seeds' stacked
        # parameters as one flat tensor: 220 against 84 us an Adam step for 16 PPO CartPole seeds.
        for name, parameters in self.optimized_parameters().items():
            optimizer = getattr(self._per_seed[0], name)
            settings = dict(optimizer.defaults)
            if settings.get("fused"):
                settings.update(fused=False, foreach=True)
            if hasattr(optimizer, "flat_parameters"):
                setattr(self, name, flat_optimizer(type(optimizer), parameters, **settings))
            else:
                setattr(self, name, type(optimizer)(parameters, **settings))
        self.generators = [torch.Generator(device=self.device).manual_seed(seed) for seed in seeds]

    def stack_seeds(self) -> None:
        """Replaces the networks named in ``stacked_networks`` by the stacks of the seeds' own."""
        for name, stack in self.stacked_networks.items():
            networks = [getattr(agent, name) for agent in self._per_seed]
            setattr(self, name, None if networks[0] is None else stack(networks))  # None: a network left out

    def optimized_parameters(self) -> dict[str, list[Tensor]]:
        """Each optimiser of the agent (by attribute name) -> the stacked parameters it steps."""
        return {"optimizer": [p for p in self.parameters() if p.requires_grad]}

    def _by_seed(self, tensor: Tensor) -> Tensor:
        """``[K * N, ...]`` rows of all envs -> ``[K, N, ...]``, row k being seed k's envs."""
        return tensor.unflatten(0, (self.num_seeds, -1))

    def seed_draws(self, draw: Callable[[torch.Generator], Tensor]) -> Tensor:
        """``draw(generator)`` with each seed's generator, stacked: ``[K, ...]``."""
        return torch.stack([draw(generator) for generator in self.generators])

    def seed_normal(self, shape: tuple[int, ...]) -> Tensor:
        """Standard normal draws ``[K, *shape]``, row k from seed k's generator."""
        return self.seed_draws(lambda g: torch.randn(shape, generator=g, device=g.device))

    def seed_categorical(self, probs: Tensor) -> Tensor:
        """One index per row of ``probs`` (``[K, ..., A]``) by the inverse CDF of a uniform draw
        from the row's seed's generator."""
        shape = probs.shape[1:-1]
        uniform = self.seed_draws(lambda g: torch.rand(shape, generator=g, device=g.device))
        cdf = probs.cumsum(-1)
        return torch.searchsorted(cdf, uniform.unsqueeze(-1)).squeeze(-1).clamp_max(cdf.shape[-1] - 1)

    def clip_gradients(self, optimizer: torch.optim.Optimizer, max_grad_norm: float) -> None:
        flat = getattr(optimizer, "flat_parameters", None)
        if flat is not None:  # per seed: the stacked parameters, whose gradients are views of the flat one
            params = flat.parameters
        else:
            params = [p for group in optimizer.param_groups for p in group["params"]]
        clip_grad_norm_per_copy_(params, max_grad_norm, self.num_seeds)

    def seed_agents(self) -> list[Agent]:
        for index, agent in enumerate(self._per_seed):
            for name in self.stacked_networks:
                if getattr(self, name) is not None:
                    getattr(self, name).stack.copy_into(index, getattr(agent, name))
        return list(self._per_seed)

    def use_normalization(self, stats: dict[str, RunningMeanStd]) -> None:
        """The seeds' statistics side by side (``groups``); each seed's agent takes its own."""
        super().use_normalization(stats)
        for k, agent in enumerate(self._per_seed):
            agent.use_normalization({name: group_stats.group(k) for name, group_stats in stats.items()})

    def training_state(self, include_buffer: bool = True) -> dict[str, Any]:
        return {**super().training_state(include_buffer), "generators": [g.get_state() for g in self.generators]}

    def load_training_state(self, state: dict[str, Any]) -> None:
        super().load_training_state(state)
        for generator, generator_state in zip(self.generators, state["generators"], strict=True):
            generator.set_state(generator_state)

    def payload(self) -> dict[str, Any]:
        return {**super().payload(), "seeds": self.seeds}


def build_multi_seed(agent_cls: type[Agent], config: AgentConfig, observation_space: spaces.Space,
                     action_space: spaces.Space, seeds: list[int]) -> MultiSeed:
    """The multi-seed version of ``agent_cls`` (see ``MULTI_SEED_AGENTS``) over torch-native envs."""
    if agent_cls.name not in MULTI_SEED_AGENTS:
        raise ValueError(f"--num-seeds trains {', '.join(MULTI_SEED_AGENTS)}; {agent_cls.name} runs one seed "
                         f"per process (scripts/compare.py runs many in parallel)")
    from envs.torch_envs import TORCH_ENVS

    if config.env not in TORCH_ENVS:
        raise ValueError(f"--num-seeds steps the seeds together in a torch-native env; {config.env} has none "
                         f"(choose from {', '.join(TORCH_ENVS)})")
    if config.backend == "gymnasium":
        raise ValueError(f"--num-seeds steps the seeds together in {config.env}'s torch-native env, which "
                         f"--backend gymnasium rules out (use --backend torch or auto)")
    config.backend = "torch"
    module, name = MULTI_SEED_AGENTS[agent_cls.name].split(":")
    return getattr(import_module(module), name)(config, observation_space, action_space, seeds)
