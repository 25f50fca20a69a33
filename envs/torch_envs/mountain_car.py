"""MountainCar-v0 and MountainCarContinuous-v0 (Moore 1990) as batched tensor ops.

Mirrors ``gymnasium/envs/classic_control/mountain_car.py`` and ``continuous_mountain_car.py``
(gymnasium 1.4). Both share one update: velocity += push - 0.0025 cos(3 position), clipped to
+-0.07; position += velocity, clipped to [-1.2, 0.6]; and the inelastic left wall (a car at
-1.2 moving left stops). They differ in the push, the goal (0.5 vs 0.45) and the reward.
"""
from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from envs.torch_envs.base import TorchClassicControlEnv

MIN_POSITION = -1.2
MAX_POSITION = 0.6
MAX_SPEED = 0.07
GRAVITY = 0.0025


def mountain_car_update(state: Tensor, push: Tensor) -> tuple[Tensor, Tensor]:
    """Moves ``state`` (``[2, N]``: position, velocity) one step in place; returns its rows."""
    position, velocity = state
    velocity.add_(push).sub_(torch.cos(position * 3).mul_(GRAVITY)).clamp_(-MAX_SPEED, MAX_SPEED)
    position.add_(velocity).clamp_(MIN_POSITION, MAX_POSITION)
    velocity.masked_fill_((position == MIN_POSITION) & (velocity < 0), 0.0)
    return position, velocity


class _MountainCarBase(TorchClassicControlEnv):
    """Reset and observation shared by both cars: position ~ U[-0.6, -0.4], velocity 0."""

    state_dim = 2

    def __init__(self, num_envs: int, *, goal_velocity: float = 0.0, **options) -> None:
        self.goal_velocity = float(goal_velocity)
        self.single_observation_space = spaces.Box(
            np.array([MIN_POSITION, -MAX_SPEED], dtype=np.float32),
            np.array([MAX_POSITION, MAX_SPEED], dtype=np.float32), dtype=np.float32)
        super().__init__(num_envs, **options)

    def _sample_initial_state(self, out: Tensor, generator: torch.Generator) -> None:
        out[0].uniform_(-0.6, -0.4, generator=generator)
        out[1].zero_()

    def _observe(self, state: Tensor) -> Tensor:
        return state.T.to(torch.float32, copy=True)


class TorchMountainCar(_MountainCarBase):
    """Actions 0, 1, 2 push with -0.001, 0, +0.001; reward -1 per step; goal position 0.5."""

    env_id = "MountainCar-v0"
    default_max_episode_steps = 200
    force = 0.001
    goal_position = 0.5

    def __init__(self, num_envs: int, **options) -> None:
        self.single_action_space = spaces.Discrete(3)
        super().__init__(num_envs, **options)

    def _transition(self, state: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        push = (action - 1).to(state.dtype).mul_(self.force)
        position, velocity = mountain_car_update(state, push)
        terminated = (position >= self.goal_position) & (velocity >= self.goal_velocity)
        return torch.full_like(position, -1.0), terminated


class TorchMountainCarContinuous(_MountainCarBase):
    """Action: force in [-1, 1] (clipped) times 0.0015; reward 100 at the goal (0.45) minus
    0.1 action^2, where gymnasium squares the action *before* clipping it."""

    env_id = "MountainCarContinuous-v0"
    default_max_episode_steps = 999
    power = 0.0015
    goal_position = 0.45

    def __init__(self, num_envs: int, **options) -> None:
        self.single_action_space = spaces.Box(low=-1.0, high=1.0, shape=(1,), dtype=np.float32)
        super().__init__(num_envs, **options)

    def _transition(self, state: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        raw = action[:, 0]
        position, velocity = mountain_car_update(state, raw.clamp(-1.0, 1.0).mul_(self.power))
        terminated = (position >= self.goal_position) & (velocity >= self.goal_velocity)
        reward = terminated.to(state.dtype).mul_(100.0).sub_(raw.square().mul_(0.1))
        # gymnasium stores this env's state as float32 after every step; so does float64 mode.
        state.copy_(state.to(torch.float32))
        return reward, terminated
