"""Exploration policies over action values and the linear schedules that anneal them.

Both policies are given as action probabilities ``[B, A]`` rather than as samplers, so one
function serves acting (sample from them) and expected targets (average Q under them, as in
Expected SARSA, van Seijen et al. 2009).
"""
from __future__ import annotations

import torch
from torch import Tensor


def linear_schedule(start: float, end: float, duration: float, step: int) -> float:
    """``start`` at step 0, moving linearly to ``end`` at ``duration``, then ``end`` forever.

    A ``duration`` of 0 (or less) means the schedule is already at ``end``.
    """
    if step >= duration:  # (``end`` itself, not ``start + (end - start) * 1``, a rounding off)
        return end
    return start + (end - start) * step / duration


def epsilon_greedy_probs(q: Tensor, epsilon: float) -> Tensor:
    """epsilon-greedy (Sutton & Barto 2018, sec. 2.2): ``epsilon / A`` on every action, the rest greedy.

    Greedy ties share the greedy mass equally: "ties broken randomly" (Sutton & Barto, sec. 2.2),
    which keeps a zero-initialised table from always trying the first action.
    """
    num_actions = q.shape[-1]
    greedy = (q == q.max(dim=-1, keepdim=True).values).to(q.dtype)
    greedy = greedy / greedy.sum(dim=-1, keepdim=True)
    return epsilon / num_actions + (1.0 - epsilon) * greedy


def boltzmann_probs(q: Tensor, temperature: float) -> Tensor:
    """Softmax (Boltzmann) action selection, ``pi(a) ∝ exp(Q(a) / T)`` (Sutton & Barto 2018, eq. 13.2)."""
    if temperature <= 0:
        raise ValueError(f"the Boltzmann temperature must be positive, got {temperature}")
    return torch.softmax(q / temperature, dim=-1)


def sample_actions(probs: Tensor) -> Tensor:
    """One action index per row of ``probs`` ``[B, A]``."""
    return torch.multinomial(probs, 1).squeeze(1)
