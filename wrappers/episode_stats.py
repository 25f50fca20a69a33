"""Episode returns and lengths, accumulated on the device without a host sync per step."""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from envs.vec_env import VecEnv
from wrappers.base import VecEnvWrapper


class EpisodeStatistics(VecEnvWrapper):
    """Adds ``episode_return``, ``episode_length`` and the mask ``episode_done`` to ``info``.

    Returns are summed from the rewards this wrapper sees, so it sits below any reward clipping
    or normalisation. An episode ends where ``info["episode_end"]`` says (Atari: real game over,
    not a lost life) or else where it terminated or was truncated.
    """

    def __init__(self, env: VecEnv):
        super().__init__(env)
        self._return = torch.zeros(self.num_envs, dtype=torch.float64, device=self.device)
        self._length = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)

    def reset(self, seed: int | None = None) -> Tensor:
        # fresh tensors: the last step's info may hold the old ones (all-envs steps rebind them)
        self._return, self._length = torch.zeros_like(self._return), torch.zeros_like(self._length)
        return self.env.reset(seed)

    def step(self, action: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        ended = info.get("episode_end")
        if ended is None:
            ended = terminated | truncated
        if "env_id" in info:  # an asynchronous env returns some envs, some unstepped after a reset
            envs = info["env_id"]
            stepped = ~info["first_obs"] if "first_obs" in info else True
            returns, lengths = self._return[envs] + reward, self._length[envs] + stepped
            self._return[envs], self._length[envs] = returns.masked_fill(ended, 0.0), lengths.masked_fill(ended, 0)
        else:  # all envs: the new tensors replace the old ones
            returns, lengths = self._return + reward, self._length + 1
            # On the CPU, reading whether any episode ended costs nothing and spares the two
            # masked fills on most steps; elsewhere they run unconditionally, never waiting.
            if self.device.type != "cpu" or bool(ended.any()):
                self._return, self._length = returns.masked_fill(ended, 0.0), lengths.masked_fill(ended, 0)
            else:
                self._return, self._length = returns, lengths
        info["episode_done"], info["episode_return"], info["episode_length"] = ended, returns, lengths
        return obs, reward, terminated, truncated, info

    def state_dict(self) -> dict[str, Any]:
        return {"env": self.env.state_dict(), "return": self._return.clone(), "length": self._length.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if self.resumable:  # otherwise the env starts fresh episodes
            self._return.copy_(state["return"])
            self._length.copy_(state["length"])


class ClipReward(VecEnvWrapper):
    """Rewards to their sign for training (Mnih et al. 2015); the logged score stays raw."""

    def step(self, action: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, torch.sign(reward), terminated, truncated, info
