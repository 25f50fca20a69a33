"""One sum-tree per group of envs, addressed by the slots of the whole buffer.

A replay buffer over N envs numbers its slots ``row * N + env``. When its envs form G equal
groups (the seeds of a multi-seed run), group k's transitions need a tree of their own, so that
its samples and their probabilities depend on its priorities alone: group k's tree holds them at
``row * n + (env - k * n)`` (n = N / G), the slots a buffer of group k's envs alone would use.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from replay.sum_tree import SumTree


class GroupedSumTree:
    """``groups`` sum-trees of ``rows * envs_per_group`` leaves behind the buffer-wide slot numbers."""

    def __init__(self, groups: int, rows: int, envs_per_group: int, device: torch.device | str = "cpu"):
        self.groups, self.envs_per_group = groups, envs_per_group
        self.num_envs = groups * envs_per_group
        self.trees = [SumTree(rows * envs_per_group, device) for _ in range(groups)]

    @property
    def nbytes(self) -> int:
        return sum(tree.nbytes for tree in self.trees)

    def split(self, slots: Tensor) -> tuple[Tensor, Tensor]:
        """The group of each buffer-wide slot and its slot in that group's tree."""
        env = slots % self.num_envs
        return env // self.envs_per_group, (slots // self.num_envs) * self.envs_per_group + env % self.envs_per_group

    def _by_group(self, slots: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The order that sorts ``slots`` by group (stable), and each group's local slots in it."""
        group, local = self.split(slots.flatten())
        order = torch.argsort(group, stable=True)
        return order, list(local[order].split(torch.bincount(group, minlength=self.groups).tolist()))

    def get(self, slots: Tensor) -> Tensor:
        order, locals_ = self._by_group(slots)
        values = torch.empty(order.shape, dtype=torch.float64, device=slots.device)
        values[order] = torch.cat([tree.get(local) for tree, local in zip(self.trees, locals_)])
        return values.view(slots.shape)

    def update(self, slots: Tensor, values: Tensor) -> None:
        """Sets the leaves of buffer-wide ``slots`` to ``values``, each in its group's tree (a
        repeated slot resolves as in ``SumTree.update``: the stable sort keeps the repeats' order)."""
        order, locals_ = self._by_group(slots)
        group_values = values.flatten()[order].split([len(local) for local in locals_])
        for tree, local, value in zip(self.trees, locals_, group_values):
            tree.update(local, value)

    def state_dict(self) -> dict[str, Any]:
        return {"trees": [tree.state_dict() for tree in self.trees]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state.get("trees", ())) != self.groups:
            raise ValueError(f"sum-tree state does not hold {self.groups} groups' trees")
        for tree, tree_state in zip(self.trees, state["trees"]):
            tree.load_state_dict(tree_state)
