"""n-step returns over a window of stored steps (Sutton & Barto 2018, eq. 7.1; Rainbow's
multi-step targets, Hessel et al. 2018, eq. 2)."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class NStepWindow(NamedTuple):
    reward: Tensor      # [B] float32: sum_{k<m} gamma^k r_{t+k}
    terminated: Tensor  # [B] float32: 1 where the window ended by termination
    discount: Tensor    # [B] float32: gamma^m, the factor in front of the bootstrap value
    length: Tensor      # [B] int64: m, the number of rewards summed (1..n)


def n_step_window(reward: Tensor, terminated: Tensor, truncated: Tensor, gamma: float) -> NStepWindow:
    """Collapse windows of n consecutive steps ``[B, n]`` (same env, starting at the sampled step).

    The window stops at the first step that ends the episode (terminated or truncated), so it
    never sums rewards of the next episode; a truncated window still bootstraps (terminated = 0)
    from the true final observation, with ``discount = gamma^m``.
    """
    n = reward.shape[1]
    if n == 1:  # nothing to collapse: the values of the general case below, bit for bit, in fewer ops
        first = reward[:, 0]
        return NStepWindow(reward=first.float(), terminated=terminated[:, 0].float(),
                           discount=torch.full_like(first, gamma, dtype=torch.float32),
                           length=torch.ones_like(first, dtype=torch.int64))
    done = terminated | truncated
    alive = torch.cumprod((~done).to(reward.dtype), dim=1)
    included = torch.cat([torch.ones_like(alive[:, :1]), alive[:, :-1]], dim=1)  # step k is summed
    powers = gamma ** torch.arange(n, dtype=torch.float64, device=reward.device)
    summed = (reward.double() * powers * included.double()).sum(1)
    length = included.sum(1).long()
    last_terminated = terminated.gather(1, (length - 1)[:, None]).squeeze(1)
    return NStepWindow(reward=summed.float(), terminated=last_terminated.float(),
                       discount=(gamma ** length.double()).float(), length=length)
