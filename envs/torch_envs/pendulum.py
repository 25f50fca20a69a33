"""Pendulum-v1 (inverted pendulum swing-up) as batched tensor ops.

Mirrors ``gymnasium/envs/classic_control/pendulum.py`` (gymnasium 1.4): torque clipped to
+-2, cost ``angle_normalize(theta)^2 + 0.1 theta_dot^2 + 0.001 u^2`` on the state *before* the
update, semi-implicit Euler with ``dt = 0.05`` and the new speed clipped to +-8. The episode
never terminates.

One departure, invisible in observations and rewards: gymnasium lets the stored angle grow
without bound (up to pi + 80 rad in 200 steps), where a float32 angle has lost 1e-5 rad of
precision; here the stored angle is wrapped to [-pi, pi) after each step. Everything gymnasium
computes from it (cos, sin, the normalised angle in the cost) is 2 pi-periodic.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from envs.torch_envs.base import TorchClassicControlEnv

MAX_SPEED = 8.0
MAX_TORQUE = 2.0
DT = 0.05
MASS = 1.0
LENGTH = 1.0


def angle_normalize(x: Tensor) -> Tensor:
    """Angle to [-pi, pi) with Python's floored modulo, as gymnasium's ``angle_normalize``."""
    return torch.remainder(x + math.pi, 2 * math.pi) - math.pi


class TorchPendulum(TorchClassicControlEnv):
    """State ``(theta, theta_dot)`` with theta 0 upright; action: torque ``[N, 1]``."""

    env_id = "Pendulum-v1"
    state_dim = 2
    default_max_episode_steps = 200

    def __init__(self, num_envs: int, *, g: float = 10.0, **options) -> None:
        self.g = float(g)
        high = np.array([1.0, 1.0, MAX_SPEED], dtype=np.float32)
        self.single_observation_space = spaces.Box(low=-high, high=high, dtype=np.float32)
        self.single_action_space = spaces.Box(low=-MAX_TORQUE, high=MAX_TORQUE, shape=(1,),
                                              dtype=np.float32)
        super().__init__(num_envs, **options)

    def _sample_initial_state(self, out: Tensor, generator: torch.Generator) -> None:
        out[0].uniform_(-math.pi, math.pi, generator=generator)
        out[1].uniform_(-1.0, 1.0, generator=generator)

    def _transition(self, state: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        theta, theta_dot = state
        u = action[:, 0].clamp(-MAX_TORQUE, MAX_TORQUE)
        costs = angle_normalize(theta).square_() + 0.1 * theta_dot.square() + 0.001 * u.square()
        angular_acc = (3 * self.g / (2 * LENGTH)) * torch.sin(theta) + (3.0 / (MASS * LENGTH**2)) * u
        theta_dot.add_(angular_acc, alpha=DT).clamp_(-MAX_SPEED, MAX_SPEED)
        theta.copy_(angle_normalize(theta.add_(theta_dot, alpha=DT)))
        return costs.neg_(), torch.zeros_like(theta, dtype=torch.bool)

    def _observe(self, state: Tensor) -> Tensor:
        theta, theta_dot = state
        return torch.stack((torch.cos(theta), torch.sin(theta), theta_dot), dim=1).to(torch.float32)
