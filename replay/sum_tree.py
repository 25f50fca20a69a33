"""A wide sum-tree for proportional prioritized replay (Schaul et al. 2016, sec. 3.3).

Leaves hold ``p_i ** alpha``; every inner node holds the sum of its ``BRANCHING`` children, and
the nodes of the top level (at most ``TOP_SIZE`` of them) are searched through one prefix sum.
A whole batch descends level by level with vectorized operations, never a Python loop per sample.

Why wide (32 children) instead of binary: on a CPU the cost of a batched descent is per-operation
overhead times the number of levels, so 1M leaves take 2 gathered levels below a 1,024-node top
instead of 20 binary ones. On the CPU the arithmetic runs in numpy on views of the tree's tensors
(a numpy call costs about a microsecond, a torch call several); on a GPU it runs in torch. The
algorithm is written once against the small ``_Ops`` interface below.

Inner sums are always recomputed from the children (never updated by deltas), so the tree never
drifts, and a zero leaf can never be selected: the descent picks the first child whose running
sum exceeds the target, clamped below the row's total, and that child has positive mass. On the
CPU this holds by the order of the running sums (see ``_NumpyOps.first_above``); a GPU's parallel
scan gives no such order, so there the child's own mass is checked too.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

BRANCHING = 32
TOP_SIZE = 1024


class _NumpyOps:
    """numpy on views that share memory with the tree's CPU tensors."""

    @staticmethod
    def view(t: Tensor) -> np.ndarray:
        return t.numpy()

    @staticmethod
    def out(a: np.ndarray) -> Tensor:
        return torch.from_numpy(a)

    _UPPER = np.triu(np.ones((BRANCHING, BRANCHING)))
    _ONES = np.ones(BRANCHING)

    @staticmethod
    def rows(level: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        # ``take`` gathers whole rows two to three times faster than fancy indexing
        return level.reshape(-1, BRANCHING).take(nodes, axis=0)

    @staticmethod
    def row_sums(rows: np.ndarray) -> np.ndarray:
        # a product with ones: about three times faster than ``sum(axis=1)`` at batch 256
        return rows @ _NumpyOps._ONES

    @staticmethod
    def running_sums(rows: np.ndarray) -> np.ndarray:
        # a product with a triangle of ones: three times faster than numpy's cumsum over rows of 32
        return rows @ _NumpyOps._UPPER

    @staticmethod
    def first_above(running: np.ndarray, rows: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row, the first child whose running sum exceeds ``u`` (clamped into [0, row total)).

        A matrix product accumulates every column in the same order, and adding the exact zero
        ``x * 0`` changes nothing, so the running sums never decrease along a row and a zero
        child's equals its left neighbour's. The first one above ``u >= 0`` therefore belongs to
        a child with positive mass, with no mask to check (tests/replay/test_sum_tree.py checks
        this property of the product on the BLAS in use)."""
        u = _NumpyOps.clamp_below(u, running[:, -1])
        return (running > u[:, None]).argmax(axis=1), u

    @staticmethod
    def take_rows(a: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return a[np.arange(len(cols)), cols]

    @staticmethod
    def clamp_below(u: np.ndarray, high: np.ndarray) -> np.ndarray:
        return np.minimum(np.maximum(u, 0.0), np.nextafter(high, 0.0))

    @staticmethod
    def arange_like(a: np.ndarray) -> np.ndarray:
        return np.arange(len(a), dtype=a.dtype)


class _TorchOps:
    """torch on the tree's own tensors (GPU)."""

    @staticmethod
    def view(t: Tensor) -> Tensor:
        return t

    @staticmethod
    def out(a: Tensor) -> Tensor:
        return a

    @staticmethod
    def rows(level: Tensor, nodes: Tensor) -> Tensor:
        return level.reshape(-1, BRANCHING)[nodes]

    @staticmethod
    def row_sums(rows: Tensor) -> Tensor:
        return rows.sum(1)

    @staticmethod
    def running_sums(rows: Tensor) -> Tensor:
        return torch.cumsum(rows, dim=1)

    @staticmethod
    def first_above(running: Tensor, rows: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
        """Per row, the first child with positive mass whose running sum exceeds ``u``, after ``u``
        is clamped below the running sum of the row's last positive child. A parallel scan may
        round its running sums out of order, so positivity is checked, not inferred."""
        positive = rows > 0
        u = _TorchOps.clamp_below(u, (running * positive).amax(dim=1))
        return ((running > u[:, None]) & positive).to(torch.uint8).argmax(dim=1), u

    @staticmethod
    def take_rows(a: Tensor, cols: Tensor) -> Tensor:
        return a.gather(1, cols[:, None]).squeeze(1)

    @staticmethod
    def clamp_below(u: Tensor, high: Tensor) -> Tensor:
        return torch.minimum(u.clamp(min=0.0), torch.nextafter(high, torch.zeros_like(high)))

    @staticmethod
    def arange_like(a: Tensor) -> Tensor:
        return torch.arange(len(a), dtype=a.dtype, device=a.device)


class SumTree:
    """Sums over ``size`` non-negative leaves with batched update, prefix-sum search and sampling.

    Lives on ``device``; indices and values go in and come out as tensors on that device.
    """

    def __init__(self, size: int, device: torch.device | str = "cpu", *,
                 backend: str | None = None) -> None:
        """``backend``: "numpy" (CPU only) or "torch"; by default numpy on the CPU, torch elsewhere."""
        if size < 1:
            raise ValueError(f"sum-tree size must be >= 1, got {size}")
        self.size = size
        self.device = torch.device(device)
        backend = backend or ("numpy" if self.device.type == "cpu" else "torch")
        if backend not in ("numpy", "torch") or (backend == "numpy" and self.device.type != "cpu"):
            raise ValueError(f"sum-tree backend must be 'torch', or 'numpy' on the CPU; got {backend!r}")
        self._ops = _NumpyOps if backend == "numpy" else _TorchOps
        self.levels: list[Tensor] = []  # levels[0] = leaves, levels[-1] = top (<= TOP_SIZE nodes)
        n = size
        while True:
            padded = n if n <= TOP_SIZE else -(-n // BRANCHING) * BRANCHING
            self.levels.append(torch.zeros(padded, dtype=torch.float64, device=self.device))
            if n <= TOP_SIZE:
                break
            n = padded // BRANCHING
        self._views = [self._ops.view(level) for level in self.levels]

    @staticmethod
    def estimate_nbytes(size: int) -> int:
        total, n = 0, size
        while n > TOP_SIZE:
            n = -(-n // BRANCHING) * BRANCHING
            total += 8 * n
            n //= BRANCHING
        return total + 8 * n

    @property
    def nbytes(self) -> int:
        return sum(level.numel() * level.element_size() for level in self.levels)

    @property
    def total(self) -> float:
        return float(self._views[-1].sum())

    def get(self, indices: Tensor) -> Tensor:
        return self.levels[0][indices]

    def update(self, indices: Tensor, values: Tensor) -> None:
        """Set leaves ``indices`` to ``values`` (duplicates: any one of them wins consistently)."""
        ops, views = self._ops, self._views
        idx = ops.view(indices.to(self.device, torch.int64))
        views[0][idx] = ops.view(values.to(self.device, torch.float64))
        for child, parent in zip(views[:-1], views[1:]):
            idx = idx // BRANCHING
            parent[idx] = ops.row_sums(ops.rows(child, idx))

    def find(self, targets: Tensor) -> Tensor:
        """Leaf ``i`` with ``sum(leaves[:i]) <= u < sum(leaves[:i+1])`` for each target ``u``.

        Targets outside ``[0, total)`` are clamped into it; the found leaf always has positive mass.
        """
        return self._ops.out(self._find(self._ops.view(targets.to(self.device, torch.float64))))

    def _find(self, u):
        ops, views = self._ops, self._views
        if ops is _NumpyOps:
            node, u = self._search_top(views[-1], u)
        else:  # a GPU scans the whole top row per target at no cost
            node, u = self._descend(views[-1][None, :], u, lambda a, cols: a[0, cols])
        below_top = views[-2::-1]
        for depth, level in enumerate(below_top):
            leaves = depth == len(below_top) - 1  # no target is left to carry below a leaf
            child, u = self._descend(ops.rows(level, node), u, None if leaves else ops.take_rows)
            node = node * BRANCHING + child
        return node

    @staticmethod
    def _search_top(top: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Binary search in the top level's prefix sums (numpy's cumsum is sequential, so the first
        running sum above ``u`` always belongs to a node with positive mass)."""
        running = np.cumsum(top)
        u = _NumpyOps.clamp_below(u, running[-1])
        node = np.searchsorted(running, u, side="right")
        return node, u - (running - top)[node]

    def _descend(self, rows, u, take=None):
        """Per row, the first child with positive mass whose running sum exceeds ``u``, and (given
        ``take``, which picks one entry per row) the target left inside that child. ``u`` is
        clamped into the row first, which absorbs rounding in the subtractions on the way down."""
        running = self._ops.running_sums(rows)
        child, u = self._ops.first_above(running, rows, u)
        return child, None if take is None else u - take(running - rows, child)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Tensor:
        """Stratified proportional sampling: one uniform target in each of ``batch_size`` equal
        segments of the total (Schaul et al. 2016, appendix B.2.1)."""
        total = self.total
        if not total > 0.0:
            raise ValueError("cannot sample: every priority is zero (nothing sampleable)")
        draws = torch.rand(batch_size, generator=generator, dtype=torch.float64, device=self.device)
        u = self._ops.view(draws)
        return self._ops.out(self._find((u + self._ops.arange_like(u)) * (total / batch_size)))

    def state_dict(self) -> dict[str, Any]:
        return {"levels": [level.clone() for level in self.levels]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        levels = state["levels"]
        if [len(x) for x in levels] != [len(x) for x in self.levels]:
            raise ValueError("sum-tree state does not match this tree's size")
        for level, saved in zip(self.levels, levels):
            level.copy_(saved)
