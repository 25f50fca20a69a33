"""Atari through ale-py's C++ ``AtariVectorEnv`` with the standard DQN preprocessing.

The C++ vector env does the preprocessing itself (84x84 grayscale, 4-frame stack, frameskip 4
with max-pooling over the last two frames, up to 30 no-op starts, fire reset), so the Python
side only converts arrays to tensors. Rewards come back unclipped so the logged episodic return
is the real game score; clipping for training happens on the device (``ClipReward``).
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np
import torch
from torch import Tensor

from envs.vec_env import VecEnv, to_device

_SUFFIX = re.compile(r"(NoFrameskip)?-v\d+$")


def atari_game_name(env_id: str) -> str | None:
    """ROM name for ``ALE/Pong-v5``, ``PongNoFrameskip-v4``, ``Pong`` or ``pong``; None otherwise."""
    from ale_py import roms

    name = env_id.split("/", 1)[1] if env_id.startswith("ALE/") else env_id
    name = _SUFFIX.sub("", name)
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    return snake if snake in roms.get_all_rom_ids() else None


class AtariVecEnv(VecEnv):
    """``AtariVectorEnv`` as a ``VecEnv``.

    With ``episodic_life`` a lost life is a termination for learning (Mnih et al. 2015) while
    the game goes on; ``info["episode_end"]`` marks only real game ends (or truncations), which
    is what episode statistics count.
    """

    def __init__(self, game: str, num_envs: int, *, seed: int = 0, device: str | torch.device = "cpu",
                 episodic_life: bool = False, sticky_actions: float = 0.0, noop_max: int = 30,
                 frame_skip: int = 4, frame_stack: int = 4, max_episode_frames: int = 108_000,
                 full_action_space: bool = False, num_threads: int = 0):
        from ale_py import AtariVectorEnv

        if not 0.0 <= sticky_actions <= 1.0:
            raise ValueError(f"sticky_actions must be a probability in [0, 1], got {sticky_actions}")
        self.game = game
        self.num_envs = num_envs
        self.device = torch.device(device)
        self._seed = seed
        self.env = AtariVectorEnv(
            game, num_envs, num_threads=num_threads, autoreset_mode="SameStep",
            stack_num=frame_stack, frameskip=frame_skip, maxpool=True, noop_max=noop_max,
            use_fire_reset=True, episodic_life=False, life_loss_info=episodic_life,
            reward_clipping=False, repeat_action_probability=sticky_actions,
            max_num_frames_per_episode=max_episode_frames, full_action_space=full_action_space)
        self.single_observation_space = self.env.single_observation_space
        self.single_action_space = self.env.single_action_space
        self._lives = np.zeros(num_envs, dtype=np.int32)

    def reset(self, seed: int | None = None) -> Tensor:
        obs, info = self.env.reset(seed=self._seed if seed is None else seed)
        self._lives = info["lives"].copy()
        return to_device(obs, self.device)

    def step(self, action: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action.to("cpu", torch.int64).numpy())
        # A life loss keeps the game going (lives drop); a game over resets it (lives refill).
        game_over = terminated & (info["lives"] >= self._lives)
        self._lives = info["lives"].copy()
        next_obs = to_device(obs, self.device)
        ended = terminated | truncated
        if "final_obs" in info and ended.any():
            final_obs = to_device(np.where(ended[:, None, None, None], info["final_obs"], obs), self.device)
        else:
            final_obs = next_obs
        return (next_obs, to_device(reward.astype(np.float32), self.device), to_device(terminated, self.device),
                to_device(truncated, self.device),
                {"final_obs": final_obs, "episode_end": to_device(game_over | truncated, self.device)})

    def close(self) -> None:
        self.env.close()
