"""DQN for K seeds in one process (``agents.multi_seed``): stacked online and target Q-networks,
each seed's exploration (epsilon-greedy draws or NoisyNet noise) drawn with its own generator,
and a replay buffer whose samples, uniform or prioritized, keep the seeds apart."""
from __future__ import annotations

import torch
from gymnasium import spaces
from torch import Tensor, nn

from agents.dqn import DQN, DQNConfig
from agents.multi_seed import MultiSeed
from agents.q_heads import NoisyLinear, QNetwork
from agents.seed_stack import SeedStack
from replay.grouped_replay_buffer import GroupedReplayBuffer

# Settings whose statistics the stacked networks do not keep per seed (a frozen encoder's replayed
# features, fitted feature statistics).
UNAVAILABLE = ("replay_features", "standardize_features")


class StackedQNetwork(nn.Module):
    """K ``QNetwork``s called on ``[K, B, ...]`` observations (row k by network k)."""

    def __init__(self, networks: list[QNetwork]):
        super().__init__()
        self.stack = SeedStack(networks)
        self.register_buffer("support", networks[0].support.clone(), persistent=False)  # the same for all
        # The head's NoisyNet noise buffers in the order ``QHead.reset_noise`` draws them.
        index = {name: i for i, name in enumerate(self.stack.buffer_names)}
        self.noise_buffers = [index[f"head.{name}.{eps}"] for name, module in networks[0].head.named_modules()
                              if isinstance(module, NoisyLinear) for eps in ("eps_in", "eps_out")]

    def reset_noise(self, generators: list[torch.Generator]) -> None:
        """Each seed's fresh NoisyNet noise, drawn from its own generator in the order a lone
        network's ``head.reset_noise(generator)`` draws it (the scaling runs once per buffer)."""
        buffers = self.stack.stacked_buffers()
        for i in self.noise_buffers:
            size, device = buffers[i].shape[1], buffers[i].device
            buffers[i].copy_(NoisyLinear.scale(torch.stack([NoisyLinear.draw(size, device, g) for g in generators])))

    def forward(self, obs: Tensor, noise: bool = True, encoded: bool = False) -> Tensor:
        return self.stack.call("forward", obs, noise=noise, encoded=encoded)

    def q_values(self, obs: Tensor, noise: bool = True, encoded: bool = False) -> Tensor:
        return self.stack.call("q_values", obs, noise=noise, encoded=encoded)


class MultiSeedDQN(MultiSeed, DQN):
    """DQN (double, dueling, n-step, C51, SARSA targets) for K seeds at once."""

    seed_agent_class = DQN
    sample_dim = 1  # one [K, batch_size] batch per gradient step
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

    def reset_noise(self, network: StackedQNetwork) -> None:
        network.reset_noise(self.generators)

    def setup_training(self, num_envs: int) -> None:
        cfg = self.config
        self.buffer = GroupedReplayBuffer(cfg.buffer_size, num_envs, self.observation_space, self.action_space,
                                          self.device, self.generators, n_step=cfg.n_step, gamma=cfg.gamma,
                                          prioritized=cfg.prioritized, alpha=cfg.priority_alpha,
                                          priority_eps=cfg.priority_eps)
