"""DQN for K seeds in one process (``agents.multi_seed``): stacked online and target Q-networks,
each seed's exploration drawn with its own generator, and a replay buffer whose samples keep the
seeds apart."""
from __future__ import annotations

import torch
from gymnasium import spaces
from torch import Tensor, nn

from agents.dqn import DQN, DQNConfig, QNetwork
from agents.multi_seed import MultiSeed
from agents.seed_stack import SeedStack
from replay.grouped_replay_buffer import GroupedReplayBuffer

# Settings whose randomness or statistics the stacked networks and grouped replay do not keep
# per seed (NoisyNet noise, sum trees, fitted feature statistics).
UNAVAILABLE = ("noisy", "prioritized", "replay_features", "standardize_features")


class StackedQNetwork(nn.Module):
    """K ``QNetwork``s called on ``[K, B, ...]`` observations (row k by network k)."""

    def __init__(self, networks: list[QNetwork]):
        super().__init__()
        self.stack = SeedStack(networks)
        self.register_buffer("support", networks[0].support.clone(), persistent=False)  # the same for all

    def forward(self, obs: Tensor, noise: bool = True, encoded: bool = False) -> Tensor:
        return self.stack.call("forward", obs, noise=noise, encoded=encoded)

    def q_values(self, obs: Tensor, noise: bool = True, encoded: bool = False) -> Tensor:
        return self.stack.call("q_values", obs, noise=noise, encoded=encoded)


class MultiSeedDQN(MultiSeed, DQN):
    """DQN (double, dueling, n-step, C51, SARSA targets) for K seeds at once."""

    seed_agent_class = DQN
    stacked_networks = {"q": StackedQNetwork, "q_target": StackedQNetwork}

    def __init__(self, config: DQNConfig, observation_space: spaces.Space, action_space: spaces.Space,
                 seeds: list[int]):
        for setting in UNAVAILABLE:
            if getattr(config, setting):
                raise ValueError(f"--{setting.replace('_', '-')} is not available with --num-seeds")
        super().__init__(config, observation_space, action_space, seeds)

    def greedy_action(self, obs: Tensor, noise: bool) -> Tensor:
        return self.q.q_values(self._by_seed(obs), noise).argmax(-1).flatten()

    def random_actions(self, count: int) -> Tensor:
        per_seed = count // self.num_seeds
        return self.seed_draws(lambda g: torch.randint(self.num_actions, (per_seed,), generator=g,
                                                       device=g.device)).flatten()

    def uniforms(self, count: int) -> Tensor:
        per_seed = count // self.num_seeds
        return self.seed_draws(lambda g: torch.rand(per_seed, generator=g, device=g.device)).flatten()

    def training_batches(self):
        """One ``[K, batch_size]`` batch per gradient step, drawn at once as in ``DQN``."""
        cfg = self.config
        yield from self.buffer.sample(cfg.batch_size * cfg.gradient_steps).chunk(cfg.gradient_steps, dim=1)

    def setup_training(self, num_envs: int) -> None:
        cfg = self.config
        self.buffer = GroupedReplayBuffer(cfg.buffer_size, num_envs, self.observation_space, self.action_space,
                                          self.device, self.generators, n_step=cfg.n_step, gamma=cfg.gamma)
