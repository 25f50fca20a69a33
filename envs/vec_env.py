"""The batched environment contract every agent steps through: tensors in, tensors out."""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor


def to_device(array: np.ndarray, device: torch.device, dtype: np.dtype | type | None = None) -> Tensor:
    """A numpy array from an env as a tensor on ``device`` (cast to ``dtype`` on the host, where a
    small array's cast costs a third of a tensor's): through pinned host memory and a non-blocking
    copy when the device is a GPU, so the copy overlaps with host work."""
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=dtype))
    if device.type == "cpu":
        return tensor
    if device.type == "cuda":
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=True)


class VecEnv:
    """N environments stepped together; all inputs and outputs are tensors on ``device``.

    ``step`` autoresets in the same step: where an episode ended (terminated or truncated) the
    returned observation is already the new episode's first one, and ``info["final_obs"]``
    (``[N, *obs_shape]``, equal to the returned observation where nothing ended) holds the true
    last observation, so truncated episodes can bootstrap from it.

    ``info["episode_return"]``/``info["episode_length"]`` (``[N]``) with the mask
    ``info["episode_done"]`` report finished episodes as a person would score them: the raw game
    score for Atari, whole games when lives are episodes for learning.

    An asynchronous env (``batch_size < num_envs``, ale-py's send/recv mode) returns from ``reset``
    and ``step`` only the ``batch_size`` envs ready first, so the others step on meanwhile: ``step``
    takes the actions of the envs last returned (``env_ids``), and its results, shaped
    ``[batch_size, ...]``, are those of the envs ``info["env_id"]``, in general other ones. The envs
    a reset did not return come back in later steps with their first observation (no reward, no
    transition), marked in ``info["first_obs"]`` until every env has come back once.
    """

    num_envs: int
    device: torch.device
    single_observation_space: gym.Space
    single_action_space: gym.Space
    #: Whether ``load_state_dict`` restores the exact trajectories (else: fresh episodes).
    resumable: bool = False

    @property
    def batch_size(self) -> int:
        """Envs returned per ``reset``/``step``: all of them unless the env is asynchronous."""
        return self.num_envs

    @property
    def env_ids(self) -> Tensor | None:
        """Asynchronous envs: the ids of the envs the last ``reset``/``step`` returned; else None."""
        return None

    def reset(self, seed: int | None = None) -> Tensor:
        raise NotImplementedError

    def step(self, action: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Any]]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def render(self) -> list[np.ndarray] | None:
        """One frame per env when built with ``render_mode="rgb_array"``; None from envs that draw
        nothing (torch-native ones; an Atari env's frames are its observations)."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the exact same trajectories after a restart.

        Environments that cannot be snapshotted (Atari) return ``{}`` and resume with fresh
        episodes."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def __enter__(self) -> "VecEnv":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
