"""Conjugate gradient for ``A x = b`` with A symmetric positive definite and given only as a
matrix-vector product (TRPO's Fisher matrix: Schulman et al. 2015, appendix C)."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def conjugate_gradient(matvec: Callable[[Tensor], Tensor], b: Tensor, iters: int,
                       residual_tol: float = 1e-10) -> Tensor:
    """Approximate solution of ``A x = b`` after at most ``iters`` steps, starting from x = 0
    (Nocedal & Wright 2006, Algorithm 5.2); stops early once ``|r|^2 < residual_tol``."""
    if iters < 1:
        raise ValueError(f"conjugate gradient needs at least one iteration, got {iters}")
    x = torch.zeros_like(b)
    residual = b.clone()
    direction = b.clone()
    residual_sq = residual @ residual
    for _ in range(iters):
        if float(residual_sq) < residual_tol:
            break
        a_direction = matvec(direction)
        alpha = residual_sq / (direction @ a_direction)
        x += alpha * direction
        residual -= alpha * a_direction
        new_residual_sq = residual @ residual
        direction = residual + (new_residual_sq / residual_sq) * direction
        residual_sq = new_residual_sq
    return x
