"""CartPole-v1 (Barto, Sutton & Anderson 1983) as batched tensor ops.

Mirrors ``gymnasium/envs/classic_control/cartpole.py`` (gymnasium 1.4): explicit Euler
integration with ``tau = 0.02``, termination on the state *after* the update, and a reward of 1
on every step including the terminating one (``sutton_barto_reward``: 0, and -1 on termination).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from envs.torch_envs.base import TorchClassicControlEnv

GRAVITY = 9.8
MASS_CART = 1.0
MASS_POLE = 0.1
TOTAL_MASS = MASS_POLE + MASS_CART
HALF_POLE_LENGTH = 0.5
POLE_MASS_LENGTH = MASS_POLE * HALF_POLE_LENGTH
FORCE_MAG = 10.0
TAU = 0.02
THETA_THRESHOLD = 12 * 2 * math.pi / 360
X_THRESHOLD = 2.4


class TorchCartPole(TorchClassicControlEnv):
    """State ``(x, x_dot, theta, theta_dot)``; actions 0 (push left) and 1 (push right)."""

    env_id = "CartPole-v1"
    state_dim = 4
    default_max_episode_steps = 500

    def __init__(self, num_envs: int, *, sutton_barto_reward: bool = False, **options) -> None:
        self.sutton_barto_reward = sutton_barto_reward
        high = np.array([X_THRESHOLD * 2, np.inf, THETA_THRESHOLD * 2, np.inf], dtype=np.float32)
        self.single_observation_space = spaces.Box(-high, high, dtype=np.float32)
        self.single_action_space = spaces.Discrete(2)
        super().__init__(num_envs, **options)

    def _sample_initial_state(self, out: Tensor, generator: torch.Generator) -> None:
        out.uniform_(-0.05, 0.05, generator=generator)

    def _transition(self, state: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        x, x_dot, theta, theta_dot = state
        force = action.to(state.dtype).mul_(2 * FORCE_MAG).sub_(FORCE_MAG)  # 0 -> -10, 1 -> +10
        cos_theta, sin_theta = torch.cos(theta), torch.sin(theta)
        temp = (theta_dot.square().mul_(sin_theta).mul_(POLE_MASS_LENGTH).add_(force)
                .div_(TOTAL_MASS))
        theta_acc = (sin_theta.mul_(GRAVITY).sub_(cos_theta * temp)
                     .div_(cos_theta.square().mul_(-MASS_POLE / TOTAL_MASS).add_(4.0 / 3.0)
                           .mul_(HALF_POLE_LENGTH)))
        x_acc = temp.sub_(theta_acc * cos_theta, alpha=POLE_MASS_LENGTH / TOTAL_MASS)
        # Euler: positions move with the old velocities, then velocities with the accelerations.
        x.add_(x_dot, alpha=TAU)
        x_dot.add_(x_acc, alpha=TAU)
        theta.add_(theta_dot, alpha=TAU)
        theta_dot.add_(theta_acc, alpha=TAU)
        terminated = (x.abs() > X_THRESHOLD) | (theta.abs() > THETA_THRESHOLD)
        if self.sutton_barto_reward:
            reward = terminated.to(state.dtype).neg_()
        else:
            reward = torch.ones_like(x)
        return reward, terminated

    def _observe(self, state: Tensor) -> Tensor:
        return state.T.to(torch.float32, copy=True)
