"""Base class for ``VecEnv`` wrappers: forwards everything to the wrapped env."""
from __future__ import annotations

from typing import Any

from torch import Tensor

from envs.vec_env import VecEnv


class VecEnvWrapper(VecEnv):
    def __init__(self, env: VecEnv):
        self.env = env
        self.num_envs = env.num_envs
        self.device = env.device
        self.single_observation_space = env.single_observation_space
        self.single_action_space = env.single_action_space

    @property
    def resumable(self) -> bool:
        return self.env.resumable

    @property
    def batch_size(self) -> int:
        return self.env.batch_size

    @property
    def env_ids(self) -> Tensor | None:
        return self.env.env_ids

    def reset(self, seed: int | None = None) -> Tensor:
        return self.env.reset(seed)

    def step(self, action: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Any]]:
        return self.env.step(action)

    def close(self) -> None:
        self.env.close()

    def render(self):
        return self.env.render()

    def state_dict(self) -> dict[str, Any]:
        return {"env": self.env.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.env.load_state_dict(state.get("env", {}))

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes this wrapper lacks (e.g. ``game`` of an Atari env).
        if name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)
