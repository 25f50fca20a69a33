"""Datasets of environment observations for pre-training and probing, collected batched over envs.

``collect_frames(env, n)`` steps any object with ``VecEnv``'s ``reset``/``step`` (tensors in,
tensors out) under a policy and writes the observations straight into one preallocated tensor
on the env's device: uint8 Atari frames stay uint8 (a 20k-frame Pong dataset is 560 MB), vector
observations keep their dtype. Rows are time-major (row ``t * num_envs + k`` is env ``k`` at step
``t``), so the first rows are the earliest frames, which the probe's held-out split relies on.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from gymnasium import spaces
from torch import Tensor
from tqdm.auto import tqdm

#: Maps a batch of observations ``[N, *obs_shape]`` to actions ``[N, ...]`` for ``env.step``.
Policy = Callable[[Tensor], Tensor]
#: Ground-truth variables ``[N, D]`` for the observations ``env`` just returned (``(env, obs)``).
GroundTruth = Callable[[Any, Tensor], Tensor]


class RandomPolicy:
    """Uniform random actions for a whole batch from one seeded generator (no loop over envs).

    Discrete, MultiDiscrete and bounded Box action spaces; draws happen on the CPU so the same
    seed gives the same actions on every device.
    """

    def __init__(self, action_space: spaces.Space, seed: int = 0):
        if isinstance(action_space, spaces.Box) and not action_space.is_bounded("both"):
            raise ValueError(f"a random policy needs a bounded Box action space, got {action_space}")
        if not isinstance(action_space, (spaces.Discrete, spaces.MultiDiscrete, spaces.Box)):
            raise ValueError(f"no random policy for action space {action_space}")
        self.action_space = action_space
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, obs: Tensor) -> Tensor:
        batch, space = obs.shape[0], self.action_space
        if isinstance(space, spaces.Discrete):
            action = int(space.start) + torch.randint(int(space.n), (batch,), generator=self.generator)
        elif isinstance(space, spaces.MultiDiscrete):
            nvec = torch.as_tensor(space.nvec, dtype=torch.float64)
            action = (torch.rand(batch, *nvec.shape, generator=self.generator, dtype=torch.float64) * nvec).long()
            action += torch.as_tensor(space.start, dtype=torch.int64)
        else:
            low, high = torch.as_tensor(space.low), torch.as_tensor(space.high)
            action = low + (high - low) * torch.rand(batch, *space.shape, generator=self.generator, dtype=low.dtype)
        return action.to(obs.device)


@dataclass(frozen=True)
class FrameDataset:
    """``obs`` ``[n, *obs_shape]`` on the env's device; ``truth`` ``[n, D]`` when ground truth was asked for."""

    obs: Tensor
    truth: Tensor | None = None


@torch.no_grad()
def collect_frames(env: Any, frames: int, policy: Policy | None = None, *, seed: int = 0,
                   ground_truth: GroundTruth | None = None, progress: bool = False) -> FrameDataset:
    """Steps ``env`` until ``frames`` observations are stored (the last step may be cut short).

    ``policy`` defaults to ``RandomPolicy(env.single_action_space, seed)``. The env is reset
    once with ``seed``; its same-step autoreset keeps episodes flowing, so every stored
    observation is one an agent would see.
    """
    if not isinstance(frames, int) or frames < 1:
        raise ValueError(f"frames must be a positive integer, got {frames}")
    policy = RandomPolicy(env.single_action_space, seed) if policy is None else policy
    num_envs = env.num_envs
    obs = env.reset(seed=seed)
    steps = math.ceil(frames / num_envs)
    storage = torch.empty((steps * num_envs, *obs.shape[1:]), dtype=obs.dtype, device=obs.device)
    truth = None
    bar = tqdm(total=frames, desc="collecting", unit="frame", disable=not progress, leave=False)
    try:
        for step in range(steps):
            rows = slice(step * num_envs, (step + 1) * num_envs)
            storage[rows] = obs
            if ground_truth is not None:
                values = ground_truth(env, obs).to(obs.device, torch.float32)
                if truth is None:
                    truth = torch.empty((steps * num_envs, values.shape[1]), device=obs.device)
                truth[rows] = values
            bar.update(min(num_envs, frames - step * num_envs))
            if step + 1 < steps:  # the observation after the last stored one is never needed
                obs = env.step(policy(obs))[0]
    finally:
        bar.close()
    return FrameDataset(storage[:frames], None if truth is None else truth[:frames])


def state_ground_truth(env: Any, obs: Tensor) -> Tensor:
    """For vector-observation envs (CartPole, Acrobot, ...) the observation is the state itself."""
    if obs.dim() != 2:
        raise ValueError(f"state ground truth needs vector observations [N, D], got shape {tuple(obs.shape)}")
    return obs.float()
