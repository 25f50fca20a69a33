"""Running episode returns and lengths per env, kept where the env's data is."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

ALL_ENVS = slice(None)


class EpisodeSums:
    """Each env's return and length so far, in numpy arrays on the host or in tensors on a device,
    updated without a host sync per step.

    ``add`` takes a step's rewards and episode ends in the same kind (numpy arrays on the host,
    tensors elsewhere). On the CPU numpy's calls are the cheap ones: with one Gymnasium CartPole
    env (DQN's), this bookkeeping took 27 us of a 54 us step in torch's calls, 17 us of 43 in numpy's.
    """

    def __init__(self, returns: np.ndarray | Tensor, lengths: np.ndarray | Tensor):
        self.returns, self.lengths = returns, lengths
        self.on_host = isinstance(returns, np.ndarray)
        self._where = np.where if self.on_host else torch.where

    @classmethod
    def zeros(cls, num_envs: int, device: torch.device) -> "EpisodeSums":
        """Numpy arrays when ``device`` is the CPU, else tensors on ``device``."""
        if device.type == "cpu":
            return cls(np.zeros(num_envs), np.zeros(num_envs, dtype=np.int64))
        return cls(torch.zeros(num_envs, dtype=torch.float64, device=device),
                   torch.zeros(num_envs, dtype=torch.int64, device=device))

    def add(self, reward: Any, ended: Any, envs: Any = ALL_ENVS, stepped: Any = 1) -> tuple[Any, Any]:
        """Adds a step of ``envs`` (all, or the ids an asynchronous env returned), of which only
        ``stepped`` made one (an env's first observation after a reset is no step). Returns their
        sums including this step, the finished episodes' totals where ``ended``, whose sums restart."""
        returns, lengths = self.returns[envs] + reward, self.lengths[envs] + stepped
        # On the host, reading whether any episode ended costs nothing and spares the two
        # resets on most steps; elsewhere they run unconditionally, never waiting.
        if self.on_host and not ended.any():
            self.returns[envs], self.lengths[envs] = returns, lengths
        else:
            self.returns[envs] = self._where(ended, 0.0, returns)
            self.lengths[envs] = self._where(ended, 0, lengths)
        return returns, lengths

    def zero(self) -> None:
        self.returns[...] = 0
        self.lengths[...] = 0

    def state_dict(self) -> dict[str, Tensor]:
        return {"return": torch.as_tensor(self.returns).clone(), "length": torch.as_tensor(self.lengths).clone()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.returns[...] = state["return"]  # (numpy arrays and tensors alike)
        self.lengths[...] = state["length"]
