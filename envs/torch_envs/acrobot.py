"""Acrobot-v1 (Sutton 1996; Sutton & Barto 1998, sec. 11.3) as batched tensor ops.

Mirrors ``gymnasium/envs/classic_control/acrobot.py`` (gymnasium 1.4): one fourth-order
Runge-Kutta step of ``dt = 0.2`` over the equations of motion (the book's by default, the NIPS
paper's with ``book_or_nips="nips"``), then the angles wrapped to [-pi, pi] and the velocities
clipped to +-4pi and +-9pi. The step is computed in float64 for either ``dtype`` (so float32
mode only rounds the stored state). The reset state is drawn in float64 and rounded to float32,
as gymnasium does.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from envs.torch_envs.base import TorchClassicControlEnv

DT = 0.2
LINK_LENGTH_1 = 1.0
LINK_MASS_1 = 1.0
LINK_MASS_2 = 1.0
LINK_COM_POS_1 = 0.5
LINK_COM_POS_2 = 0.5
LINK_MOI = 1.0
GRAVITY = 9.8
MAX_VEL_1 = 4 * math.pi
MAX_VEL_2 = 9 * math.pi


def wrap_angle(x: Tensor, low: float = -math.pi, high: float = math.pi) -> Tensor:
    """gymnasium's ``wrap``: shift by whole periods until ``low <= x <= high`` (ends kept)."""
    period = high - low
    x = x - torch.ceil((x - high) / period).clamp_(min=0) * period
    return x + torch.ceil((low - x) / period).clamp_(min=0) * period


class TorchAcrobot(TorchClassicControlEnv):
    """State ``(theta1, theta2, dtheta1, dtheta2)``; actions 0, 1, 2 apply torque -1, 0, +1."""

    env_id = "Acrobot-v1"
    state_dim = 4
    default_max_episode_steps = 500

    def __init__(self, num_envs: int, *, book_or_nips: str = "book", **options) -> None:
        if book_or_nips not in ("book", "nips"):
            raise ValueError(f"book_or_nips must be 'book' or 'nips', got {book_or_nips!r}")
        self.book_or_nips = book_or_nips
        high = np.array([1.0, 1.0, 1.0, 1.0, MAX_VEL_1, MAX_VEL_2], dtype=np.float32)
        self.single_observation_space = spaces.Box(low=-high, high=high, dtype=np.float32)
        self.single_action_space = spaces.Discrete(3)
        super().__init__(num_envs, **options)

    def _sample_initial_state(self, out: Tensor, generator: torch.Generator) -> None:
        draw = torch.empty(out.shape, dtype=torch.float64, device=out.device)
        draw.uniform_(-0.1, 0.1, generator=generator)
        out.copy_(draw.to(torch.float32))

    def _derivatives(self, s: Tensor, torque: Tensor) -> Tensor:
        """gymnasium's ``AcrobotEnv._dsdt`` over the batch: ``d/dt (theta1, theta2, dtheta1, dtheta2)``."""
        m1, m2, l1 = LINK_MASS_1, LINK_MASS_2, LINK_LENGTH_1
        lc1, lc2, i1, i2 = LINK_COM_POS_1, LINK_COM_POS_2, LINK_MOI, LINK_MOI
        theta1, theta2, dtheta1, dtheta2 = s
        cos_theta2, sin_theta2 = torch.cos(theta2), torch.sin(theta2)
        d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * cos_theta2) + i1 + i2
        d2 = m2 * (lc2**2 + l1 * lc2 * cos_theta2) + i2
        phi2 = m2 * lc2 * GRAVITY * torch.cos(theta1 + theta2 - math.pi / 2.0)
        phi1 = (-m2 * l1 * lc2 * dtheta2**2 * sin_theta2
                - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * sin_theta2
                + (m1 * lc1 + m2 * l1) * GRAVITY * torch.cos(theta1 - math.pi / 2) + phi2)
        numerator = torque + d2 / d1 * phi1 - phi2
        if self.book_or_nips == "book":
            numerator = numerator - m2 * l1 * lc2 * dtheta1**2 * sin_theta2
        ddtheta2 = numerator / (m2 * lc2**2 + i2 - d2**2 / d1)
        ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
        return torch.stack((dtheta1, dtheta2, ddtheta1, ddtheta2))

    def _transition(self, state: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        # Integrated in float64 whatever ``dtype``: the stages square velocities of up to 9 pi,
        # and a float32 step drifts up to 2e-4 from gymnasium's float64 one.
        s = state.to(torch.float64)
        torque = action.to(torch.float64) - 1.0  # gymnasium's AVAIL_TORQUE[action]: -1, 0, +1
        half = DT / 2.0
        k1 = self._derivatives(s, torque)
        k2 = self._derivatives(s + half * k1, torque)
        k3 = self._derivatives(s + half * k2, torque)
        k4 = self._derivatives(s + DT * k3, torque)
        s = s + DT / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        s[:2] = wrap_angle(s[:2])
        s[2].clamp_(-MAX_VEL_1, MAX_VEL_1)
        s[3].clamp_(-MAX_VEL_2, MAX_VEL_2)
        terminated = -torch.cos(s[0]) - torch.cos(s[1] + s[0]) > 1.0
        state.copy_(s)
        reward = terminated.to(self.dtype) - 1.0  # -1 per step, 0 on reaching the height
        return reward, terminated

    def _observe(self, state: Tensor) -> Tensor:
        theta1, theta2, dtheta1, dtheta2 = state
        return torch.stack((torch.cos(theta1), torch.sin(theta1), torch.cos(theta2),
                            torch.sin(theta2), dtheta1, dtheta2), dim=1).to(torch.float32)
