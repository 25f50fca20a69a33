"""Atari through ale-py's C++ ``AtariVectorEnv`` with the standard DQN preprocessing.

The C++ vector env does the preprocessing itself (84x84 grayscale, 4-frame stack, frameskip 4
with max-pooling over the last two frames, up to 30 no-op starts, fire reset). Its rewards come
back unclipped: the episode statistics sum the real game score, and clipping for training happens
here after them, on the host arrays, as does all of a step's bookkeeping (see ``AtariVecEnv``).
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np
import gymnasium as gym
import torch
from torch import Tensor

from envs.episode_sums import ALL_ENVS, EpisodeSums
from envs.vec_env import VecEnv, to_device

_SUFFIX = re.compile(r"(NoFrameskip)?-v\d+$")


def atari_game_name(env_id: str) -> str | None:
    """ROM name for ``ALE/Pong-v5``, ``PongNoFrameskip-v4``, ``Pong`` or ``pong``; None otherwise,
    and None for a Gymnasium env that only shares a game's name (``Blackjack-v1`` is toy-text)."""
    from ale_py import roms

    spec = gym.registry.get(env_id)
    if spec is not None and not str(spec.entry_point).startswith("ale_py"):
        return None

    name = env_id.split("/", 1)[1] if env_id.startswith("ALE/") else env_id
    name = _SUFFIX.sub("", name)
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    return snake if snake in roms.get_all_rom_ids() else None


class AtariVecEnv(VecEnv):
    """``AtariVectorEnv`` as a ``VecEnv``.

    With ``episodic_life`` a lost life is a termination for learning (Mnih et al. 2015) while
    the game goes on; the episode statistics (``info["episode_done"]``, ``episode_return``,
    ``episode_length``) count only real game ends (or truncations). The game is not reset at a
    lost life, so no FIRE is pressed after it (SB3's wrappers press one): in games that need it,
    the agent presses it. With ``clip_rewards`` the agent gets each reward's sign (Mnih et al.
    2015) while the episode statistics keep the game score. With ``0 < batch_size < num_envs``
    the env is asynchronous (see ``VecEnv``): ale-py's threads go on stepping the other envs
    while the agent acts on and learns from the ``batch_size`` returned.

    The step's bookkeeping (lives, episode statistics, clipping) is done here in numpy, on the
    arrays ale-py returns, rather than in wrappers over tensors: on a CPU each call right after
    an ale-py step runs some ten times slower than in a loop of its own, and where the host's idle
    cores halt, a pause of more than about 100 us between steps costs more than its length
    (docs/performance.md, "Cores that halt between env steps"). Stepping 8 Pong envs and storing
    the rollout, this (and numpy's row copies in the buffer) took the median pause between steps
    from 122-221 us to 90-168 in the same runs ("Bookkeeping on ale-py's arrays").
    """

    def __init__(self, game: str, num_envs: int, *, seed: int = 0, device: str | torch.device = "cpu",
                 episodic_life: bool = False, sticky_actions: float = 0.0, noop_max: int = 30,
                 frame_skip: int = 4, frame_stack: int = 4, max_episode_frames: int = 108_000,
                 full_action_space: bool = False, num_threads: int = 0, batch_size: int = 0,
                 clip_rewards: bool = False):
        from ale_py import AtariVectorEnv

        if not 0.0 <= sticky_actions <= 1.0:
            raise ValueError(f"sticky_actions must be a probability in [0, 1], got {sticky_actions}")
        if not 0 <= batch_size <= num_envs:
            raise ValueError(f"batch_size must be in [0, num_envs={num_envs}] (0: all envs), got {batch_size}")
        for name, value, least in (("frame_skip", frame_skip, 1), ("frame_stack", frame_stack, 1),
                                   ("noop_max", noop_max, 0), ("max_episode_frames", max_episode_frames, 1),
                                   ("num_threads", num_threads, 0)):
            if not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
        self.game, self.sticky_actions, self.clip_rewards = game, sticky_actions, clip_rewards
        self.num_envs = num_envs
        self._batch_size = batch_size or num_envs
        self.device = torch.device(device)
        self._seed = seed
        self.env = AtariVectorEnv(
            game, num_envs, batch_size=self._batch_size, num_threads=num_threads, autoreset_mode="SameStep",
            stack_num=frame_stack, frameskip=frame_skip, maxpool=True, noop_max=noop_max,
            use_fire_reset=True, episodic_life=False, life_loss_info=episodic_life,
            reward_clipping=False, repeat_action_probability=sticky_actions,
            max_num_frames_per_episode=max_episode_frames, full_action_space=full_action_space)
        self.single_observation_space = self.env.single_observation_space
        self.single_action_space = self.env.single_action_space
        self._lives = np.zeros(num_envs, dtype=np.int32)
        self._sums = EpisodeSums.zeros(num_envs, torch.device("cpu"))
        self._env_ids: Tensor | None = None
        self._not_returned: np.ndarray | None = None  # envs whose first observation is still to come

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @property
    def env_ids(self) -> Tensor | None:
        return self._env_ids

    def reset(self, seed: int | None = None) -> Tensor:
        obs, info = self.env.reset(seed=self._seed if seed is None else seed)
        # Every game starts with the same lives; an asynchronous reset reports only some envs.
        self._lives = np.full(self.num_envs, info["lives"].max(), dtype=info["lives"].dtype)
        self._sums.zero()
        if self._batch_size < self.num_envs:
            self._not_returned = np.ones(self.num_envs, dtype=bool)
            self._returned(info["env_id"])
        return to_device(obs, self.device)

    def _returned(self, ids: np.ndarray) -> np.ndarray | None:
        """Asynchronous mode: records which envs came back; returns which of them came back for the
        first time since the reset (None once every env has)."""
        self._env_ids = to_device(ids.astype(np.int64), self.device)
        if self._not_returned is None:
            return None
        first = self._not_returned[ids]
        self._not_returned[ids] = False
        if not self._not_returned.any():
            self._not_returned = None
        return first

    def step(self, action: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action.to("cpu", torch.int64).numpy())
        envs, stepped, first_obs = ALL_ENVS, 1, None
        if self._batch_size < self.num_envs:
            envs = info["env_id"]
            first_obs = self._returned(envs)
            if first_obs is not None:
                stepped = ~first_obs
        # A life loss keeps the game going (lives drop); a game over resets it (lives refill).
        game_over = terminated & (info["lives"] >= self._lives[envs])
        self._lives[envs] = info["lives"]
        ended = game_over | truncated
        returns, lengths = self._sums.add(reward, ended, envs, stepped)
        next_obs = to_device(obs, self.device)
        # ale-py's final_obs holds the last frames only where a game was reset; at a life loss the
        # game goes on and the returned observation is the one that follows.
        if "final_obs" in info and ended.any():
            final_obs = to_device(np.where(ended[:, None, None, None], info["final_obs"], obs), self.device)
        else:
            final_obs = next_obs
        extra = {"final_obs": final_obs, "episode_done": to_device(ended, self.device),
                 "episode_return": to_device(returns, self.device), "episode_length": to_device(lengths, self.device)}
        if self._env_ids is not None:
            extra["env_id"] = self._env_ids
        if first_obs is not None:
            extra["first_obs"] = to_device(first_obs, self.device)
        reward = np.sign(reward, dtype=np.float32) if self.clip_rewards else reward.astype(np.float32)
        return (next_obs, to_device(reward, self.device), to_device(terminated, self.device),
                to_device(truncated, self.device), extra)

    def close(self) -> None:
        self.env.close()
