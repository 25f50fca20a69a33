"""CartPole from pixels with task-irrelevant visual distractors: a benchmark for representations.

The physics are Gymnasium's CartPole-v1; the observation is a stack of the last
``frame_stack`` grayscale frames ``[frame_stack, size, size]`` uint8 (the stack makes the
velocities observable), drawn with numpy from the state, not pygame, so stepping stays cheap.
Behind the cart and pole, ``num_distractors`` gray blocks move in straight lines and bounce
off the frame's edges, and ``noise_std`` adds per-pixel Gaussian noise: both are driven by
the env's own random generator and never by the state or the actions, so a representation
that encodes them carries nothing the task needs. With ``num_distractors=0`` and
``noise_std=0`` it is plain pixel CartPole.

The pole is drawn longer than in Gymnasium's renderer (``0.4 * size``), and edges are
anti-aliased, so that angles within CartPole's +-12 degree limit move the tip by several
pixels and sub-pixel motion still changes the image.
"""
from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

ENV_ID = "reprl/DistractorCartPole-v0"

_CART_WIDTH, _CART_HEIGHT = 0.14, 0.08  # fractions of the frame side
_POLE_LENGTH, _POLE_WIDTH = 0.4, 0.04
_CART_ROW = 0.75  # the cart's centre, as a fraction of the frame height from the top


def pixel_centres(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates of the pixel centres, ``[size, 1]`` and ``[1, size]``."""
    centres = np.arange(size, dtype=np.float32) + 0.5
    return centres[:, None], centres[None, :]


def draw_cartpole(cart_x: float, pole_angle: float, size: int, x_threshold: float = 2.4) -> np.ndarray:
    """The cart and pole as an anti-aliased ``[size, size]`` float32 layer in ``[0, 1]``.

    ``cart_x`` in [-x_threshold, x_threshold] spans the frame's width; ``pole_angle`` is in
    radians from upright, positive to the right (as CartPole's state).
    """
    rows, cols = pixel_centres(size)
    half_width, half_height = _CART_WIDTH * size / 2, _CART_HEIGHT * size / 2
    centre_col = half_width + (cart_x + x_threshold) / (2 * x_threshold) * (size - 2 * half_width)
    centre_row = _CART_ROW * size
    # Coverage of a box: 1 inside, 0 beyond half a pixel outside, linear in between.
    cart = np.clip(np.minimum(half_width + 0.5 - np.abs(cols - centre_col),
                              half_height + 0.5 - np.abs(rows - centre_row)), 0.0, 1.0)
    top_row = centre_row - half_height
    tip_col = centre_col + _POLE_LENGTH * size * np.sin(pole_angle)
    tip_row = top_row - _POLE_LENGTH * size * np.cos(pole_angle)
    distance = _segment_distance(rows, cols, (top_row, centre_col), (tip_row, tip_col))
    pole = np.clip(max(_POLE_WIDTH * size / 2, 0.75) + 0.5 - distance, 0.0, 1.0)
    return np.maximum(cart, pole).astype(np.float32)


def _segment_distance(rows: np.ndarray, cols: np.ndarray, start: tuple[float, float],
                      end: tuple[float, float]) -> np.ndarray:
    """Distance of every pixel centre to the segment ``start``-``end`` (row, col points)."""
    d_row, d_col = end[0] - start[0], end[1] - start[1]
    along = ((rows - start[0]) * d_row + (cols - start[1]) * d_col) / max(d_row ** 2 + d_col ** 2, 1e-12)
    along = np.clip(along, 0.0, 1.0)
    return np.hypot(rows - (start[0] + along * d_row), cols - (start[1] + along * d_col))


def draw_blocks(corners: np.ndarray, sides: np.ndarray, shades: np.ndarray, size: int) -> np.ndarray:
    """Axis-aligned squares (top-left ``corners`` ``[K, 2]`` as row, col; ``sides`` and
    ``shades`` ``[K]``) as one ``[size, size]`` layer, overlaps taking the brighter shade."""
    layer = np.zeros((size, size), dtype=np.float32)
    if len(sides) == 0:
        return layer
    rows, cols = pixel_centres(size)
    inside = ((rows[None] >= corners[:, 0, None, None]) & (rows[None] < (corners[:, 0] + sides)[:, None, None]) &
              (cols[None] >= corners[:, 1, None, None]) & (cols[None] < (corners[:, 1] + sides)[:, None, None]))
    return np.max(np.where(inside, shades[:, None, None], 0.0), axis=0).astype(np.float32)


class DistractorCartPoleEnv(gym.Env):
    """Pixel CartPole with moving gray blocks and pixel noise behind it (see the module doc)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(self, size: int = 64, frame_stack: int = 4, num_distractors: int = 4,
                 distractor_speed: float = 1.5, noise_std: float = 0.0, render_mode: str | None = None):
        """``size``: frame side in pixels (>= 36, the Nature CNN's minimum). ``distractor_speed``:
        pixels per step. ``noise_std``: per-pixel noise std as a fraction of full brightness."""
        if size < 36:
            raise ValueError(f"size must be >= 36 pixels, got {size}")
        if frame_stack < 1:
            raise ValueError(f"frame_stack must be >= 1, got {frame_stack}")
        if num_distractors < 0:
            raise ValueError(f"num_distractors must be >= 0, got {num_distractors}")
        if distractor_speed < 0 or not 0 <= noise_std <= 1:
            raise ValueError(f"need distractor_speed >= 0 and noise_std in [0, 1], got {distractor_speed}, {noise_std}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got '{render_mode}'")
        self.size, self.frame_stack = int(size), int(frame_stack)
        self.num_distractors, self.distractor_speed = int(num_distractors), float(distractor_speed)
        self.noise_std, self.render_mode = float(noise_std), render_mode
        self.cartpole = CartPoleEnv()
        self.action_space = self.cartpole.action_space
        self.observation_space = spaces.Box(0, 255, (self.frame_stack, self.size, self.size), np.uint8)
        self.frames: deque[np.ndarray] = deque(maxlen=self.frame_stack)
        self.corners = np.zeros((0, 2), np.float32)
        self.velocities = np.zeros((0, 2), np.float32)
        self.sides = np.zeros(0, np.float32)
        self.shades = np.zeros(0, np.float32)

    # ------------------------------------------------------------------ distractors
    def _spawn_distractors(self) -> None:
        k, rng = self.num_distractors, self.np_random
        self.sides = rng.integers(self.size // 8, self.size // 4 + 1, k).astype(np.float32)
        self.corners = (rng.random((k, 2)) * (self.size - self.sides[:, None])).astype(np.float32)
        heading = rng.random(k) * 2 * np.pi
        self.velocities = (self.distractor_speed * np.stack([np.sin(heading), np.cos(heading)], axis=1)).astype(np.float32)
        self.shades = rng.uniform(0.3, 0.8, k).astype(np.float32)

    def _move_distractors(self) -> None:
        """Straight lines, reflected at the frame's edges."""
        limit = (self.size - self.sides)[:, None]
        corners = self.corners + self.velocities
        bounced = (corners < 0) | (corners > limit)
        self.velocities = np.where(bounced, -self.velocities, self.velocities)
        self.corners = np.clip(np.where(corners < 0, -corners, np.where(corners > limit, 2 * limit - corners, corners)),
                               0, limit)

    # ------------------------------------------------------------------ frames
    def _frame(self) -> np.ndarray:
        cart_x, _, pole_angle, _ = self.cartpole.state
        frame = np.maximum(draw_blocks(self.corners, self.sides, self.shades, self.size),
                           draw_cartpole(float(cart_x), float(pole_angle), self.size, self.cartpole.x_threshold))
        if self.noise_std > 0:
            frame = frame + self.noise_std * self.np_random.standard_normal(frame.shape, dtype=np.float32)
        return np.round(np.clip(frame, 0.0, 1.0) * 255).astype(np.uint8)

    def _observation(self) -> np.ndarray:
        return np.stack(self.frames)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        # The physics draw from their own generator, seeded from ours: distractors and noise
        # never consume the physics' random numbers, nor the other way round.
        self.cartpole.reset(seed=int(self.np_random.integers(2 ** 31)))
        self._spawn_distractors()
        frame = self._frame()
        self.frames.extend([frame] * self.frame_stack)
        return self._observation(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        _, reward, terminated, truncated, info = self.cartpole.step(action)
        self._move_distractors()
        self.frames.append(self._frame())
        return self._observation(), float(reward), terminated, truncated, info

    def render(self) -> np.ndarray | None:
        """``rgb_array``: the newest frame as ``[size, size, 3]`` uint8."""
        if self.render_mode != "rgb_array" or not self.frames:
            return None
        return np.repeat(self.frames[-1][:, :, None], 3, axis=2)


if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="envs.distractor:DistractorCartPoleEnv", max_episode_steps=500)
