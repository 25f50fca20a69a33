"""Running observation and reward normalisation on the device (as in SB3's VecNormalize)."""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from envs.vec_env import VecEnv
from wrappers.base import VecEnvWrapper


class RunningMeanStd:
    """Mean and variance of a stream of batches, merged with Chan et al.'s parallel formula.

    With ``groups`` every batch is that many equal, consecutive slices (the seed groups of a
    multi-seed run, ``agents.multi_seed``), each with statistics of its own: ``mean`` and ``var``
    gain a leading group dimension, the count is common to all, and ``group(k)`` is slice k's
    statistics (views that follow the updates). Each group's numbers are those a separate
    ``RunningMeanStd`` fed its slices alone would hold.
    """

    def __init__(self, shape: tuple[int, ...], device: torch.device, groups: int | None = None):
        self.groups = groups
        shape = ((groups,) if groups else ()) + tuple(shape)
        self.mean = torch.zeros(shape, dtype=torch.float64, device=device)
        self.var = torch.ones(shape, dtype=torch.float64, device=device)
        self.count = torch.full((), 1e-4, dtype=torch.float64, device=device)

    def _grouped(self, batch: Tensor) -> Tensor:
        """``batch [G * n, ...]`` as ``[G, n, ...]`` with groups (``[n, ...]`` without)."""
        return batch.view(self.groups, -1, *batch.shape[1:]) if self.groups else batch

    def update(self, batch: Tensor) -> None:
        batch = self._grouped(batch.double())
        rows = 1 if self.groups else 0
        batch_mean, batch_var, n = batch.mean(rows), batch.var(rows, unbiased=False), batch.shape[rows]
        delta = batch_mean - self.mean
        total = self.count + n
        self.mean += delta * n / total
        self.var.copy_((self.var * self.count + batch_var * n + delta.square() * self.count * n / total) / total)
        self.count.copy_(total)

    def standardize(self, batch: Tensor) -> Tensor:
        """``(batch - mean) / sqrt(var + 1e-8)`` in float64, each row by its group's statistics."""
        grouped = self._grouped(batch.double())
        mean, var = (self.mean.unsqueeze(1), self.var.unsqueeze(1)) if self.groups else (self.mean, self.var)
        return ((grouped - mean) / torch.sqrt(var + 1e-8)).view(batch.shape)

    def scale(self, batch: Tensor) -> Tensor:
        """``batch / sqrt(var + 1e-8)`` for statistics of scalars (``shape ()``), each row by its
        group's; computed in ``batch``'s dtype, the std rounded to it, with or without groups."""
        grouped = self._grouped(batch)
        var = self.var.unsqueeze(1) if self.groups else self.var
        return (grouped / torch.sqrt(var + 1e-8).to(batch.dtype)).view(batch.shape)

    def group(self, k: int) -> RunningMeanStd:
        """Group ``k``'s statistics, as views of these (the statistics themselves without groups)."""
        if not self.groups:
            return self
        view = RunningMeanStd.__new__(RunningMeanStd)
        view.groups, view.mean, view.var, view.count = None, self.mean[k], self.var[k], self.count
        return view

    def state_dict(self) -> dict[str, Tensor]:
        return {"mean": self.mean.clone(), "var": self.var.clone(), "count": self.count.clone()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.mean.copy_(state["mean"]); self.var.copy_(state["var"]); self.count.copy_(state["count"])

    @classmethod
    def from_state_dict(cls, state: dict[str, Tensor], device: torch.device,
                        groups: int | None = None) -> RunningMeanStd:
        """Statistics saved by ``state_dict`` (of ``groups`` groups, if it had them)."""
        shape = state["mean"].shape[1:] if groups else state["mean"].shape
        stats = cls(tuple(shape), device, groups)
        stats.load_state_dict(state)
        return stats


OBSERVATION_CLIP = 10.0  # standardised observations are clipped to [-10, 10], as SB3's VecNormalize does


def normalized_observation(stats: RunningMeanStd, obs: Tensor, clip: float = OBSERVATION_CLIP) -> Tensor:
    """``obs`` standardised by ``stats`` and clipped to ``[-clip, clip]``, in float32."""
    return stats.standardize(obs).clamp(-clip, clip).float()


class NormalizeObservation(VecEnvWrapper):
    """Standardises observations with running statistics, clipped to ``[-clip, clip]``.

    ``stats`` can be shared with an evaluation env (``training=False``) so both see the same
    scaling while only the training env updates it.
    """

    def __init__(self, env: VecEnv, clip: float = OBSERVATION_CLIP, stats: RunningMeanStd | None = None,
                 training: bool = True, groups: int | None = None):
        super().__init__(env)
        self.clip = clip
        self.training = training
        self.stats = stats or RunningMeanStd(tuple(env.single_observation_space.shape), env.device, groups)

    def _normalize(self, obs: Tensor) -> Tensor:
        return normalized_observation(self.stats, obs, self.clip)

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


def normalization_stats(env: VecEnv) -> dict[str, RunningMeanStd]:
    """The running statistics of ``env``'s chain of wrappers by what they scale: ``observation``
    (``NormalizeObservation``) and ``reward`` (``NormalizeReward``), those it has."""
    found = {}
    while isinstance(env, VecEnvWrapper):
        if isinstance(env, NormalizeObservation):
            found.setdefault("observation", env.stats)
        elif isinstance(env, NormalizeReward):
            found.setdefault("reward", env.stats)
        env = env.env
    return found


def observation_stats(env: VecEnv) -> RunningMeanStd | None:
    """The statistics of the ``NormalizeObservation`` anywhere in ``env``'s chain of wrappers
    (under a ``NormalizeReward`` too), for an evaluation env to share; None without one."""
    return normalization_stats(env).get("observation")


class NormalizeReward(VecEnvWrapper):
    """Scales rewards by the running std of the discounted return (Engstrom et al. 2020); with
    ``groups``, each group of envs by its own (``RunningMeanStd``)."""

    def __init__(self, env: VecEnv, gamma: float = 0.99, clip: float = 10.0, groups: int | None = None):
        super().__init__(env)
        self.gamma, self.clip = gamma, clip
        self.stats = RunningMeanStd((), env.device, groups)
        self._discounted = torch.zeros(env.num_envs, dtype=torch.float64, device=env.device)

    def step(self, action: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._discounted = self._discounted * self.gamma + reward
        self.stats.update(self._discounted)
        self._discounted.masked_fill_(terminated | truncated, 0.0)
        scaled = self.stats.scale(reward).clamp(-self.clip, self.clip).float()
        return obs, scaled, terminated, truncated, info

    def state_dict(self) -> dict[str, Any]:
        return {"env": self.env.state_dict(), "stats": self.stats.state_dict(), "discounted": self._discounted.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.stats.load_state_dict(state["stats"])
        self._discounted.copy_(state["discounted"])
