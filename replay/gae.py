"""Generalized advantage estimation (Schulman et al. 2016, "High-Dimensional Continuous Control
Using Generalized Advantage Estimation", eq. 16) over a rollout ``[T, N]``."""
from __future__ import annotations

import torch
from torch import Tensor


def generalized_advantages(rewards: Tensor, values: Tensor, terminated: Tensor, truncated: Tensor,
                           last_value: Tensor, final_values: Tensor, gamma: float,
                           gae_lambda: float) -> Tensor:
    """Advantages ``[T, N]``; returns are ``advantages + values``.

    ``delta_t = r_t + gamma * V_next * (1 - terminated_t) - V(s_t)`` where ``V_next`` is
    ``V(s_{t+1})`` (``values[t + 1]``, or ``last_value`` after the last step), except where the
    episode was truncated at t: there it is ``final_values[t]``, the value of the true final
    observation (truncation is not termination: the return goes on; ``final_values`` is read
    nowhere else, and may hold NaN there). Then
    ``A_t = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}``, cut at every episode end.
    """
    terminated, truncated = terminated.to(rewards.dtype), truncated.to(torch.bool)
    next_values = torch.cat([values[1:], last_value[None].to(values.dtype)], dim=0)
    next_values = torch.where(truncated, final_values.to(values.dtype), next_values)
    deltas = rewards + gamma * next_values * (1.0 - terminated) - values
    carry = gamma * gae_lambda * (1.0 - torch.maximum(terminated, truncated.to(rewards.dtype)))
    # Backwards over the deltas in place, row by row (T is small; each row is one batched [N] op):
    # the last row's advantage is its delta, and each earlier row adds its carry times the next's.
    advantages = deltas
    rows, carries = advantages.unbind(0), carry.unbind(0)
    for t in range(len(rows) - 2, -1, -1):
        rows[t].add_(carries[t] * rows[t + 1])
    return advantages


def discounted_reward_to_go(rewards: Tensor, terminated: Tensor, truncated: Tensor,
                            last_value: Tensor, final_values: Tensor, gamma: float) -> Tensor:
    """``G_t = r_t + gamma * G_{t+1}`` within episodes, bootstrapped with ``last_value`` at the
    rollout end and ``final_values`` at truncations: GAE with lambda = 1 and zero baseline."""
    return generalized_advantages(rewards, torch.zeros_like(rewards), terminated, truncated,
                                  last_value, final_values, gamma, 1.0)
