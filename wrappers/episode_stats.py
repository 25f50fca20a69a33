"""Episode returns and lengths, summed where the env's tensors live, without a host sync per step."""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from envs.episode_sums import ALL_ENVS, EpisodeSums
from envs.vec_env import VecEnv
from wrappers.base import VecEnvWrapper


class EpisodeStatistics(VecEnvWrapper):
    """Adds ``episode_return``, ``episode_length`` and the mask ``episode_done`` to ``info``.

    Returns are summed from the rewards this wrapper sees, so it sits below any reward
    normalisation; an episode ends where it terminated or was truncated. On the CPU the sums are
    numpy arrays, and the step's tensors are read through numpy views (the tensors ``info`` gets
    share the arrays' memory).
    """

    def __init__(self, env: VecEnv):
        super().__init__(env)
        self._sums = EpisodeSums.zeros(self.num_envs, self.device)

    def reset(self, seed: int | None = None) -> Tensor:
        self._sums.zero()
        return self.env.reset(seed)

    def step(self, action: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        ended = terminated | truncated
        view = Tensor.numpy if self._sums.on_host else _itself
        envs, stepped = ALL_ENVS, 1
        if "env_id" in info:  # an asynchronous env returns some envs, some unstepped after a reset
            envs = view(info["env_id"])
            if "first_obs" in info:
                stepped = ~view(info["first_obs"])
        returns, lengths = self._sums.add(view(reward), view(ended), envs, stepped)
        as_tensor = torch.from_numpy if self._sums.on_host else _itself
        info.update(episode_done=ended, episode_return=as_tensor(returns), episode_length=as_tensor(lengths))
        return obs, reward, terminated, truncated, info

    def state_dict(self) -> dict[str, Any]:
        return {"env": self.env.state_dict(), **self._sums.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if self.resumable:  # otherwise the env starts fresh episodes
            self._sums.load_state_dict(state)


def _itself(value: Tensor) -> Tensor:
    return value
