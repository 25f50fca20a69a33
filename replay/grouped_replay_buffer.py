"""Replay for K seed groups of envs whose samples keep the groups apart: ``[K, B]`` batches."""
from __future__ import annotations

import gymnasium as gym
import torch

from replay.batch import Batch
from replay.replay_buffer import ReplayBuffer


class GroupedReplayBuffer(ReplayBuffer):
    """A ``ReplayBuffer`` of ``capacity`` transitions per group over ``num_envs`` envs that form
    ``len(generators)`` equal groups (the seeds of a multi-seed run, group k being envs
    ``k*n .. (k+1)*n - 1``).

    Adding stores all envs at once as usual. Sampling is uniform within each group: group k's
    draws come from its own generator and pick only its own transitions, and row k of the
    ``[K, B]`` batch holds them, so each group samples exactly what a buffer of its envs alone
    would sample with that generator.
    """

    def __init__(self, capacity: int, num_envs: int, observation_space: gym.Space, action_space: gym.Space,
                 device: torch.device | str, generators: list[torch.Generator], *, n_step: int = 1,
                 gamma: float = 0.99) -> None:
        if not generators or num_envs % len(generators):
            raise ValueError(f"num_envs ({num_envs}) must be a multiple of the number of groups ({len(generators)})")
        super().__init__(capacity * len(generators), num_envs, observation_space, action_space, device,
                         n_step=n_step, gamma=gamma)
        self.generators = generators
        self.num_groups = len(generators)

    def sample(self, batch_size: int, beta: float = 0.4, generator: torch.Generator | None = None) -> Batch:
        """``[K, batch_size]`` transitions, row k drawn uniformly from group k's with its generator."""
        if generator is not None:
            raise ValueError("a grouped buffer samples with its groups' own generators")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        counts = self._sampleable_counts()
        self._check_sampleable(counts, self.num_groups)
        draws = torch.stack([torch.rand(batch_size, generator=g, dtype=torch.float64, device=g.device)
                             for g in self.generators]).to(self.device)
        step, env = self._uniform_draws(counts, draws)
        weights = torch.ones(step.shape, dtype=torch.float32, device=self.device)
        return self._gather(step, env, weights).map(lambda tensor: tensor.unflatten(0, (self.num_groups, -1)))
