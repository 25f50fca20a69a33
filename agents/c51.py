"""The categorical projection of C51 (Bellemare et al. 2017, Algorithm 1)."""
from __future__ import annotations

import torch
from torch import Tensor


def project_distribution(next_probs: Tensor, reward: Tensor, discount: Tensor, terminated: Tensor,
                         support: Tensor) -> Tensor:
    """Projects ``r + discount * (1 - terminated) * z`` with probabilities ``next_probs [..., K]``
    back onto the fixed ``support [K]``; returns the target probabilities ``[..., K]`` (every
    leading dimension is batch, as are those of ``reward``, ``discount`` and ``terminated``).

    Each shifted atom's mass is split between its two neighbouring support atoms in proportion to
    closeness; where it lands exactly on an atom (``l == u``) all of it goes there.
    """
    shape = next_probs.shape
    next_probs, reward = next_probs.reshape(-1, shape[-1]), reward.reshape(-1)
    discount, terminated = discount.reshape(-1), terminated.reshape(-1)
    batch, atoms = next_probs.shape
    v_min, v_max = support[0], support[-1]
    delta = (v_max - v_min) / (atoms - 1)
    shifted = reward[:, None] + (discount * (1.0 - terminated))[:, None] * support[None, :]
    # (clamped again after the division, whose rounding can put v_max a hair above atoms - 1)
    position = ((shifted.clamp(v_min, v_max) - v_min) / delta).clamp(0, atoms - 1)
    lower, upper = position.floor(), position.ceil()
    lower_mass = next_probs * (upper - position + (lower == upper).to(next_probs.dtype))
    upper_mass = next_probs * (position - lower)
    offset = (torch.arange(batch, device=next_probs.device) * atoms)[:, None]
    target = torch.zeros(batch * atoms, dtype=next_probs.dtype, device=next_probs.device)
    target.index_add_(0, (lower.long() + offset).flatten(), lower_mass.flatten())
    target.index_add_(0, (upper.long() + offset).flatten(), upper_mass.flatten())
    return target.view(shape)
