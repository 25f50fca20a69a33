"""Replay for K seed groups of envs whose samples keep the groups apart: ``[K, B]`` batches."""
from __future__ import annotations

import gymnasium as gym
import torch

from replay.batch import Batch
from replay.grouped_sum_tree import GroupedSumTree
from replay.replay_buffer import ReplayBuffer


class GroupedReplayBuffer(ReplayBuffer):
    """A ``ReplayBuffer`` of ``capacity`` transitions per group over ``num_envs`` envs that form
    ``len(generators)`` equal groups (the seeds of a multi-seed run, group k being envs
    ``k*n .. (k+1)*n - 1``).

    Adding stores all envs at once as usual. Sampling keeps the groups apart: group k's draws
    come from its own generator and pick only its own transitions, uniformly or, with
    ``prioritized``, in proportion to priorities kept in a sum-tree of its own (with its own
    maximum priority for new transitions and its own importance weights), and row k of the
    ``[K, B]`` batch holds them, so each group samples exactly what a buffer of its envs alone
    would sample with that generator.
    """

    def __init__(self, capacity: int, num_envs: int, observation_space: gym.Space, action_space: gym.Space,
                 device: torch.device | str, generators: list[torch.Generator], *, n_step: int = 1,
                 gamma: float = 0.99, prioritized: bool = False, alpha: float = 0.6,
                 priority_eps: float = 1e-6) -> None:
        super().__init__(capacity * len(generators), num_envs, observation_space, action_space, device,
                         n_step=n_step, gamma=gamma, prioritized=prioritized, alpha=alpha,
                         priority_eps=priority_eps, groups=len(generators))
        self.generators = generators

    def _new_tree(self) -> GroupedSumTree:
        return GroupedSumTree(self.num_groups, self.rows, self.group_size, self.device)

    def sample(self, batch_size: int, beta: float = 0.4, generator: torch.Generator | None = None) -> Batch:
        """``[K, batch_size]`` transitions, row k drawn from group k's with its generator (with
        importance weights as ``ReplayBuffer.sample`` gives them, within the group)."""
        if generator is not None:
            raise ValueError("a grouped buffer samples with its groups' own generators")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        counts = self._sampleable_counts()
        self._check_sampleable(counts, self.num_groups)
        if self.tree is None:
            draws = torch.stack([torch.rand(batch_size, generator=g, dtype=torch.float64, device=g.device)
                                 for g in self.generators]).to(self.device)
            step, env = self._uniform_draws(counts, draws)
            weights = torch.ones(step.shape, dtype=torch.float32, device=self.device)
        else:
            step, env, weights = self._prioritized_draws(counts, batch_size, beta)
        return self._gather(step, env, weights).map(lambda tensor: tensor.unflatten(0, (self.num_groups, -1)))

    def _prioritized_draws(self, counts: torch.Tensor, batch_size: int,
                           beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Steps, envs and importance weights ``[K * batch_size]``: row k drawn from group k's tree
        with its generator, weighted within group k as ``ReplayBuffer.sample`` weights."""
        trees = self.tree.trees
        local = torch.stack([tree.sample(batch_size, generator).to(self.device)
                             for tree, generator in zip(trees, self.generators)])
        leaves = torch.stack([tree.get(row) for tree, row in zip(trees, local)])
        totals = torch.tensor([tree.total for tree in trees], dtype=torch.float64, device=self.device)
        first_env = torch.arange(self.num_groups, device=self.device).unsqueeze(1) * self.group_size
        env, row = first_env + local % self.group_size, local // self.group_size
        newest = self.env_steps[env] - 1
        step = newest - (newest - row) % self.rows
        scaled = (counts.view(self.num_groups, -1).sum(1, keepdim=True) * (leaves / totals[:, None])) ** -beta
        weights = (scaled / scaled.amax(1, keepdim=True)).float()
        return step.flatten(), env.flatten(), weights.flatten()
