"""On-policy storage: T steps of N envs, advantages by GAE, shuffled minibatches."""
from __future__ import annotations

from typing import Any, Iterator

import gymnasium as gym
import torch
from torch import Tensor

from replay.batch import Batch
from replay.gae import generalized_advantages
from replay.host_copy import row_copier
from replay.spaces import tensor_spec

_FIELDS = ("obs", "action", "log_prob", "value", "reward", "terminated", "truncated", "final_value")


class RolloutBuffer:
    """A rollout ``[num_steps, num_envs]`` on ``device``; tensors are readable as attributes
    (``advantages``, ``returns``, ``value``, ...) after ``finish``.

    The first ``add`` after ``finish`` starts the next rollout (or call ``reset``).
    """

    def __init__(self, num_steps: int, num_envs: int, observation_space: gym.Space,
                 action_space: gym.Space, device: torch.device | str = "cpu", *,
                 store_next_obs: bool = False) -> None:
        if num_steps < 1 or num_envs < 1:
            raise ValueError(f"num_steps and num_envs must be >= 1, got {num_steps}, {num_envs}")
        self.num_steps, self.num_envs = num_steps, num_envs
        self.device = torch.device(device)
        self.store_next_obs = store_next_obs
        obs_shape, obs_dtype = tensor_spec(observation_space)
        action_shape, action_dtype = tensor_spec(action_space)

        def storage(shape: tuple[int, ...] = (), dtype: torch.dtype = torch.float32) -> Tensor:
            return torch.zeros((num_steps, num_envs, *shape), dtype=dtype, device=self.device)

        self.obs = storage(obs_shape, obs_dtype)
        self.next_obs = storage(obs_shape, obs_dtype) if store_next_obs else None
        self.action = storage(action_shape, action_dtype)
        self.log_prob, self.value, self.reward = storage(), storage(), storage()
        self.terminated = storage(dtype=torch.bool)
        self.truncated = storage(dtype=torch.bool)
        self.final_value = storage()
        self.advantages, self.returns = storage(), storage()
        self._copy = {name: row_copier(getattr(self, name)) for name in _FIELDS + ("next_obs",)
                      if getattr(self, name) is not None}
        self.reset()

    def reset(self) -> None:
        """Starts a new rollout. ``final_value`` is NaN wherever ``add`` is given none, as it is on
        most steps: filling it here once spares a write per step."""
        self.step = 0
        self.finished = False
        self.final_value.fill_(float("nan"))

    def add(self, obs: Tensor, action: Tensor, log_prob: Tensor, value: Tensor | None, reward: Tensor,
            terminated: Tensor, truncated: Tensor, final_value: Tensor | None = None,
            next_obs: Tensor | None = None) -> None:
        """One step of all envs. ``value``: V(obs), or None from an agent that writes the whole
        rollout's ``value`` itself before ``finish``. ``final_value``: the agent's value of the true
        final observation where an episode was truncated (needed there, ignored elsewhere).
        ``next_obs``: the true next observation, required when the buffer stores it."""
        if self.finished:
            self.reset()
        if self.step >= self.num_steps:
            raise ValueError(f"rollout is full ({self.num_steps} steps): call finish() first")
        if self.store_next_obs and next_obs is None:
            raise ValueError("this buffer stores next_obs: pass next_obs to add()")
        t, copy = self.step, self._copy
        copy["obs"](t, obs)
        copy["action"](t, action)
        copy["log_prob"](t, log_prob)
        if value is not None:
            copy["value"](t, value)
        copy["reward"](t, reward)
        copy["terminated"](t, terminated)
        copy["truncated"](t, truncated)
        if final_value is not None:
            copy["final_value"](t, final_value)
        if self.store_next_obs:
            copy["next_obs"](t, next_obs)
        self.step += 1

    def finish(self, last_value: Tensor, gamma: float, gae_lambda: float) -> None:
        """Compute ``advantages`` and ``returns``; ``last_value`` is V of the observation after the
        last step ``[N]``."""
        if self.step != self.num_steps:
            raise ValueError(f"rollout has {self.step} of {self.num_steps} steps")
        if bool((self.truncated & self.final_value.isnan()).any()):
            raise ValueError("an episode was truncated without final_value: pass the value of "
                             "the true final observation to add()")
        # (its NaNs lie where nothing was truncated, where GAE never reads final_value)
        self.advantages = generalized_advantages(self.reward, self.value, self.terminated,
                                                 self.truncated, last_value.detach().float(),
                                                 self.final_value, gamma, gae_lambda)
        self.returns = self.advantages + self.value
        self.finished = True

    def explained_variance(self) -> Tensor:
        """``1 - Var(returns - values) / Var(returns)`` over the rollout: how much of the
        returns' variance the value estimates account for (1 is perfect, <= 0 useless)."""
        values, returns = self.value.flatten(), self.returns.flatten()
        return 1 - (returns - values).var() / returns.var().clamp_min(1e-8)

    def fields(self) -> dict[str, Tensor]:
        """The rollout's stored and computed tensors by ``Batch`` field name, ``[T, N, ...]``."""
        if not self.finished:
            raise ValueError("call finish() first")
        return {name: tensor for name, tensor in (
            ("obs", self.obs), ("action", self.action), ("log_prob", self.log_prob),
            ("value", self.value), ("advantage", self.advantages), ("returns", self.returns),
            ("reward", self.reward), ("terminated", self.terminated.float()),
            ("next_obs", self.next_obs)) if tensor is not None}

    def whole_rollout(self) -> Batch:
        """All ``T * N`` steps as one batch, in storage order (A2C's and TRPO's policy step: a
        mean over the whole rollout needs no shuffle)."""
        return Batch(**{name: tensor.flatten(0, 1) for name, tensor in self.fields().items()})

    def minibatches(self, num_minibatches: int, epochs: int,
                    generator: torch.Generator | None = None) -> Iterator[Batch]:
        """``epochs`` passes over the flattened ``T * N`` steps, each in a fresh random order,
        cut into ``num_minibatches`` nearly equal minibatches; one minibatch is the whole rollout
        in storage order each time (a mean over all of it needs no shuffle; no random draw)."""
        flat = self.whole_rollout()
        for rows in self.minibatch_rows(num_minibatches, epochs, generator):
            yield flat if rows is None else flat.take(rows)

    def minibatch_rows(self, num_minibatches: int, epochs: int,
                       generator: torch.Generator | None = None) -> Iterator[Tensor | None]:
        """The rows of ``whole_rollout`` each of ``minibatches`` takes (``Batch.take``), None for
        the whole rollout."""
        rows = self._rows_per_shuffle()
        if not 1 <= num_minibatches <= rows or epochs < 1:
            raise ValueError(f"need 1 <= num_minibatches <= {rows} and epochs >= 1, got "
                             f"{num_minibatches}, {epochs}")
        if num_minibatches == 1:
            yield from [None] * epochs
            return
        for _ in range(epochs):
            yield from self._shuffled_rows(generator).to(self.device).tensor_split(num_minibatches, dim=-1)

    def _rows_per_shuffle(self) -> int:
        """How many rows one epoch's order holds (per group, for a grouped buffer)."""
        return self.num_steps * self.num_envs

    def _shuffled_rows(self, generator: torch.Generator | None) -> Tensor:
        """One epoch's random order of ``whole_rollout``'s ``T * N`` rows."""
        return torch.randperm(self._rows_per_shuffle(), generator=generator,
                              device=generator.device if generator is not None else "cpu")

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"step": self.step, "finished": self.finished,
                                 "advantages": self.advantages.clone(), "returns": self.returns.clone()}
        for name in _FIELDS + (("next_obs",) if self.next_obs is not None else ()):
            state[name] = getattr(self, name).clone()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["obs"].shape != self.obs.shape or ("next_obs" in state) != self.store_next_obs:
            raise ValueError("checkpoint does not match this rollout buffer's shape")
        for name in _FIELDS + (("next_obs",) if self.next_obs is not None else ()):
            getattr(self, name).copy_(state[name])
        self.advantages = state["advantages"].to(self.device).clone()
        self.returns = state["returns"].to(self.device).clone()
        self.step, self.finished = int(state["step"]), bool(state["finished"])
