"""Gymnasium's vector API as a ``VecEnv``: numpy at the boundary, device tensors beyond it."""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from envs.vec_env import VecEnv, to_device
from wrappers.env_state import get_env_state, set_env_state


class TupleIndex:
    """A Tuple of Discrete spaces (Blackjack's player sum, dealer card and usable ace) as one
    Discrete index, row-major, so that tabular agents get a table row per state and MLPs a one-hot."""

    def __init__(self, space: gym.spaces.Tuple):
        sizes = np.array([int(part.n) for part in space.spaces])
        self.starts = np.array([int(part.start) for part in space.spaces])
        self.strides = np.concatenate([np.cumprod(sizes[::-1])[::-1][1:], [1]])
        self.space = gym.spaces.Discrete(int(np.prod(sizes)))

    @staticmethod
    def applies_to(space: gym.spaces.Space) -> bool:
        return isinstance(space, gym.spaces.Tuple) and all(isinstance(part, gym.spaces.Discrete)
                                                           for part in space.spaces)

    def __call__(self, parts: np.ndarray) -> np.ndarray:
        """``[N, k]`` tuples of values to ``[N]`` indices."""
        return ((np.asarray(parts) - self.starts) * self.strides).sum(-1)


class GymVecEnv(VecEnv):
    """Wraps ``gym.make_vec`` with same-step autoreset so truncations keep their final obs."""

    def __init__(self, env_id: str, num_envs: int, *, seed: int = 0, device: str | torch.device = "cpu",
                 vectorization: str = "sync", render_mode: str | None = None, **env_kwargs: Any):
        if vectorization not in ("sync", "async"):
            raise ValueError(f"vectorization must be 'sync' or 'async', got '{vectorization}'")
        self.env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=vectorization,
                                vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
                                render_mode=render_mode, **env_kwargs)
        self.num_envs = num_envs
        self.device = torch.device(device)
        self._tuple_index = (TupleIndex(self.env.single_observation_space)
                             if TupleIndex.applies_to(self.env.single_observation_space) else None)
        self.single_observation_space = (self._tuple_index.space if self._tuple_index is not None
                                         else self.env.single_observation_space)
        # Agents act with indices 0 .. n-1: a Discrete space that starts elsewhere is shifted here.
        self.single_action_space, self._action_start = self.env.single_action_space, 0
        if isinstance(self.single_action_space, gym.spaces.Discrete) and self.single_action_space.start != 0:
            self._action_start = int(self.single_action_space.start)
            self.single_action_space = gym.spaces.Discrete(int(self.single_action_space.n))
        self._seed = seed
        self._action_dtype = self.single_action_space.dtype
        self._obs_dtype = np.float32 if self.single_observation_space.dtype == np.float64 else None
        # Pure-Python envs in this process can be snapshotted; async workers cannot.
        self.resumable = vectorization == "sync"

    def _batch(self, obs: Any) -> np.ndarray:
        """The vector env's observations as one array (Tuple spaces' parts as indices)."""
        return obs if self._tuple_index is None else self._tuple_index(np.stack(obs, axis=-1))

    def _rows(self, observations: np.ndarray) -> np.ndarray:
        """Single envs' observations (an object array of them) stacked as one array."""
        if self._tuple_index is None:
            return np.stack(observations)
        return self._tuple_index([list(obs) for obs in observations])

    def reset(self, seed: int | None = None) -> Tensor:
        obs, _ = self.env.reset(seed=self._seed if seed is None else seed)
        return to_device(self._batch(obs), self.device, self._obs_dtype)

    def step(self, action: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Any]]:
        actions = action.cpu().numpy().astype(self._action_dtype, copy=False)
        obs, reward, terminated, truncated, info = self.env.step(actions + self._action_start if self._action_start
                                                                 else actions)
        obs = self._batch(obs)
        next_obs = to_device(obs, self.device, self._obs_dtype)
        if "_final_obs" in info and info["_final_obs"].any():
            final = obs.copy()
            ended = np.flatnonzero(info["_final_obs"])
            final[ended] = self._rows(info["final_obs"][ended])
            final_obs = to_device(final, self.device, self._obs_dtype)
        else:
            final_obs = next_obs
        return (next_obs, to_device(reward, self.device, np.float32), to_device(terminated, self.device),
                to_device(truncated, self.device), {"final_obs": final_obs})

    def render(self) -> list[np.ndarray] | None:
        frames = self.env.render()
        return list(frames) if frames is not None else None

    def state_dict(self) -> dict[str, Any]:
        if not isinstance(self.env, gym.vector.SyncVectorEnv):
            return {}
        return {"envs": [get_env_state(env) for env in self.env.envs]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for env, env_state in zip(getattr(self.env, "envs", []), state.get("envs", [])):
            set_env_state(env, env_state)

    def close(self) -> None:
        self.env.close()
