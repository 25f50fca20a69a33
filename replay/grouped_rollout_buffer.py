"""A rollout of K seed groups of envs whose minibatches keep the groups apart: ``[K, B]`` batches."""
from __future__ import annotations

import gymnasium as gym
import torch
from torch import Tensor

from replay.batch import Batch
from replay.rollout_buffer import RolloutBuffer


class GroupedRolloutBuffer(RolloutBuffer):
    """``[num_steps, num_envs]`` storage where the envs form ``len(generators)`` equal groups
    (the seeds of a multi-seed run, group k being envs ``k*n .. (k+1)*n - 1``).

    GAE runs over all envs at once as usual. Minibatches are drawn per group: group k's
    ``num_steps * n`` steps are shuffled by its own generator, and each minibatch is a ``[K, B]``
    batch whose row k holds only group k's steps, so each group sees exactly the minibatches a
    buffer of its envs alone would give with that generator.
    """

    def __init__(self, num_steps: int, num_envs: int, observation_space: gym.Space, action_space: gym.Space,
                 device: torch.device | str, generators: list[torch.Generator]) -> None:
        if not generators or num_envs % len(generators):
            raise ValueError(f"num_envs ({num_envs}) must be a multiple of the number of groups ({len(generators)})")
        super().__init__(num_steps, num_envs, observation_space, action_space, device)
        self.generators = generators
        self.num_groups = len(generators)

    def _by_group(self, tensor: Tensor) -> Tensor:
        """``[T, K*n, ...]`` -> ``[K, T*n, ...]``, each group's steps in ``flatten(0, 1)`` order."""
        grouped = tensor.unflatten(1, (self.num_groups, -1)).movedim(1, 0)
        return grouped.flatten(1, 2)

    def explained_variance(self) -> Tensor:
        """One explained variance per group, ``[K]``."""
        values, returns = self._by_group(self.value), self._by_group(self.returns)
        return 1 - (returns - values).var(-1) / returns.var(-1).clamp_min(1e-8)

    def whole_rollout(self) -> Batch:
        """All steps as one ``[K, T * n]`` batch, row k holding group k's steps in storage order."""
        return Batch(**{name: self._by_group(tensor) for name, tensor in self.fields().items()})

    def _rows_per_shuffle(self) -> int:
        return self.num_steps * self.num_envs // self.num_groups

    def _shuffled_rows(self, generator: torch.Generator | None) -> Tensor:
        """``[K, T * n]``: each group's rows of ``whole_rollout``'s ``[K, T * n]`` batch in an order
        drawn by the group's own generator (a ``[K, B]`` minibatch keeps the groups apart)."""
        if generator is not None:
            raise ValueError("a grouped buffer shuffles with its groups' own generators")
        return torch.stack([torch.randperm(self._rows_per_shuffle(), generator=g, device=g.device)
                            for g in self.generators])
