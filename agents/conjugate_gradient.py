"""Conjugate gradient for ``A x = b`` with A symmetric positive definite and given only as a
matrix-vector product (TRPO's Fisher matrix: Schulman et al. 2015, appendix C)."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def conjugate_gradient(matvec: Callable[[Tensor], Tensor], b: Tensor, iters: int,
                       residual_tol: float = 1e-10) -> Tensor:
    """Approximate solution of ``A x = b`` after at most ``iters`` steps, starting from x = 0
    (Nocedal & Wright 2006, Algorithm 5.2); a system stops early once ``|r|^2 < residual_tol``.

    ``b`` may hold several independent systems ``[..., n]`` (K seeds' policies, whose ``matvec``
    acts on each row alone): each row then runs its own iteration, and a row that has converged
    stays where it is while the others go on."""
    if iters < 1:
        raise ValueError(f"conjugate gradient needs at least one iteration, got {iters}")
    x = torch.zeros_like(b)
    residual = b.clone()
    direction = b.clone()
    residual_sq = _dot(residual, residual)
    for _ in range(iters):
        active = residual_sq >= residual_tol
        if not bool(active.any()):
            break
        a_direction = matvec(direction)
        alpha = torch.where(active, residual_sq / _dot(direction, a_direction), 0.0)
        x += alpha * direction
        residual -= alpha * a_direction
        new_residual_sq = _dot(residual, residual)
        direction = torch.where(active, residual + (new_residual_sq / residual_sq) * direction, direction)
        residual_sq = new_residual_sq
    return x


def _dot(a: Tensor, b: Tensor) -> Tensor:
    """Row-wise dot products over the last dimension, kept as a dimension of size 1."""
    return (a * b).sum(-1, keepdim=True)
