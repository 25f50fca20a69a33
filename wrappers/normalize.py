"""Running observation and reward normalisation on the device (as in SB3's VecNormalize)."""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from envs.vec_env import VecEnv
from wrappers.base import VecEnvWrapper


class RunningMeanStd:
    """Mean and variance of a stream of batches, merged with Chan et al.'s parallel formula."""

    def __init__(self, shape: tuple[int, ...], device: torch.device):
        self.mean = torch.zeros(shape, dtype=torch.float64, device=device)
        self.var = torch.ones(shape, dtype=torch.float64, device=device)
        self.count = torch.full((), 1e-4, dtype=torch.float64, device=device)

    def update(self, batch: Tensor) -> None:
        batch = batch.double()
        batch_mean, batch_var, n = batch.mean(0), batch.var(0, unbiased=False), batch.shape[0]
        delta = batch_mean - self.mean
        total = self.count + n
        self.mean += delta * n / total
        self.var = (self.var * self.count + batch_var * n + delta.square() * self.count * n / total) / total
        self.count = total

    def state_dict(self) -> dict[str, Tensor]:
        return {"mean": self.mean.clone(), "var": self.var.clone(), "count": self.count.clone()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.mean.copy_(state["mean"]); self.var.copy_(state["var"]); self.count = state["count"].clone()


class NormalizeObservation(VecEnvWrapper):
    """Standardises observations with running statistics, clipped to ``[-clip, clip]``.

    ``stats`` can be shared with an evaluation env (``training=False``) so both see the same
    scaling while only the training env updates it.
    """

    def __init__(self, env: VecEnv, clip: float = 10.0, stats: RunningMeanStd | None = None, training: bool = True):
        super().__init__(env)
        self.clip = clip
        self.training = training
        self.stats = stats or RunningMeanStd(tuple(env.single_observation_space.shape), env.device)

    def _normalize(self, obs: Tensor) -> Tensor:
        scaled = (obs.double() - self.stats.mean) / torch.sqrt(self.stats.var + 1e-8)
        return scaled.clamp(-self.clip, self.clip).float()

    def reset(self, seed: int | None = None) -> Tensor:
        obs = self.env.reset(seed)
        if self.training:
            self.stats.update(obs)
        return self._normalize(obs)

    def step(self, action: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self.training:
            self.stats.update(obs)
        info["final_obs"] = self._normalize(info["final_obs"])
        return self._normalize(obs), reward, terminated, truncated, info

    def state_dict(self) -> dict[str, Any]:
        return {"env": self.env.state_dict(), "stats": self.stats.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.stats.load_state_dict(state["stats"])


def observation_stats(env: VecEnv) -> RunningMeanStd | None:
    """The statistics of the ``NormalizeObservation`` anywhere in ``env``'s chain of wrappers
    (under a ``NormalizeReward`` too), for an evaluation env to share; None without one."""
    while isinstance(env, VecEnvWrapper):
        if isinstance(env, NormalizeObservation):
            return env.stats
        env = env.env
    return None


class NormalizeReward(VecEnvWrapper):
    """Scales rewards by the running std of the discounted return (Engstrom et al. 2020)."""

    def __init__(self, env: VecEnv, gamma: float = 0.99, clip: float = 10.0):
        super().__init__(env)
        self.gamma, self.clip = gamma, clip
        self.stats = RunningMeanStd((), env.device)
        self._discounted = torch.zeros(env.num_envs, dtype=torch.float64, device=env.device)

    def step(self, action: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._discounted = self._discounted * self.gamma + reward
        self.stats.update(self._discounted)
        self._discounted.masked_fill_(terminated | truncated, 0.0)
        scaled = (reward / torch.sqrt(self.stats.var + 1e-8)).clamp(-self.clip, self.clip).float()
        return obs, scaled, terminated, truncated, info

    def state_dict(self) -> dict[str, Any]:
        return {"env": self.env.state_dict(), "stats": self.stats.state_dict(), "discounted": self._discounted.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.stats.load_state_dict(state["stats"])
        self._discounted.copy_(state["discounted"])
