"""Observation storage that keeps each frame once, per environment, in a ring.

Each env has its own stream of frames: when an episode starts, the whole first observation
(all K frames of its stack, whatever the env put in them: zeros after a reset, real frames after
a life-loss fire-reset) goes in; after that every step adds only the newest frame of the next
observation. A stack is then the K consecutive frames ending at a known position, and it can
never reach across an episode boundary because every episode begins with a full stack of its own.
With K = 1 a "frame" is a whole observation and the same rules store every observation once plus
one extra per episode (the first), instead of twice (obs and next_obs).

Positions are absolute (they only grow): frame ``p`` of env ``e`` lives at ``frames[p % F, e]``
and is gone once ``p < written[e] - F``.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def env_index(env_ids: Tensor | None, all_envs: Tensor) -> tuple[Tensor, Tensor | slice]:
    """The envs of one add, as an index tensor into ``[rows, envs]`` storage and as an index into
    per-env state; for all envs (None) the latter is a slice, which reads and writes views."""
    return (all_envs, slice(None)) if env_ids is None else (env_ids, env_ids)


class FrameStore:
    """Per-env frame rings ``[num_frames, num_envs, *frame_shape]`` with stacks rebuilt on read."""

    STORAGE = ("frames", "written", "_envs", "_offsets")  # the tensors ``push`` reads or writes

    def __init__(self, num_frames: int, num_envs: int, obs_shape: tuple[int, ...],
                 frame_stack: int, dtype: torch.dtype, device: torch.device) -> None:
        if frame_stack > 1 and (len(obs_shape) < 1 or obs_shape[0] != frame_stack):
            raise ValueError(f"frame_stack={frame_stack} needs observations shaped "
                             f"[{frame_stack}, ...], got {list(obs_shape)}")
        self.obs_shape = tuple(obs_shape)
        self.stack = frame_stack
        self.num_frames = num_frames
        frame_shape = self.frame_shape(obs_shape, frame_stack)
        self.frames = torch.zeros((num_frames, num_envs, *frame_shape), dtype=dtype, device=device)
        self.written = torch.zeros(num_envs, dtype=torch.int64, device=device)
        self._envs = torch.arange(num_envs, device=device)
        self._offsets = torch.arange(frame_stack, device=device)

    def storage(self) -> tuple[Tensor, ...]:
        return tuple(getattr(self, name) for name in self.STORAGE)

    @staticmethod
    def frame_shape(obs_shape: tuple[int, ...], frame_stack: int) -> tuple[int, ...]:
        return tuple(obs_shape[1:]) if frame_stack > 1 else tuple(obs_shape)

    def push(self, obs: Tensor, next_obs: Tensor, episode_start: Tensor, env_ids: Tensor | None = None,
             skip_unstarted: bool = True) -> Tensor:
        """Store one step of each env in ``env_ids`` (distinct, any order; None: all in order);
        returns the position of each one's ``obs`` newest frame.

        Where ``episode_start`` all K frames of ``obs`` are written first; elsewhere ``obs`` is
        the previous step's ``next_obs``, already stored. Then the newest frame of ``next_obs``.
        ``skip_unstarted=False`` never reads ``episode_start`` on the host (a compiled graph
        cannot branch on it).
        """
        envs, of_envs = env_index(env_ids, self._envs)
        first = self.written[of_envs]
        # Envs not starting an episode write back what is already there: no masked scatter, no
        # host synchronisation, and nothing of the stream is disturbed. On the CPU reading the
        # mask costs nothing, and on most steps no episode starts: the write is skipped then.
        if self.frames.device.type != "cpu" or not skip_unstarted or bool(episode_start.any()):
            stacked = obs if self.stack > 1 else obs.unsqueeze(1)
            slots = (first[:, None] + self._offsets) % self.num_frames  # [B, K]
            env_column = envs[:, None]
            keep_mask = episode_start.view(-1, *([1] * (stacked.dim() - 1)))
            self.frames[slots, env_column] = torch.where(keep_mask, stacked.to(self.frames.dtype),
                                                         self.frames[slots, env_column])
            # (where the newest frame of ``next_obs`` goes: after the K frames of ``obs`` or the last one stored)
            next_position = torch.where(episode_start, first + self.stack, first)
        else:
            next_position = first
        newest_next = next_obs[:, -1] if self.stack > 1 else next_obs
        self.frames[next_position % self.num_frames, envs] = newest_next.to(self.frames.dtype)
        obs_newest = next_position - 1  # (before ``written`` changes: ``next_position`` may be a view of it)
        self.written[of_envs] = next_position + 1
        return obs_newest

    def stacks(self, envs: Tensor, newest: Tensor) -> Tensor:
        """Observations ``[B, *obs_shape]`` whose newest frames sit at ``newest`` in ``envs``."""
        positions = (newest[:, None] - self._offsets.flip(0)) % self.num_frames  # oldest first
        return self.frames[positions, envs[:, None]].reshape(len(envs), *self.obs_shape)

    def oldest_kept(self, envs: Tensor | slice) -> Tensor:
        """For each env in ``envs``, the first position still stored."""
        return self.written[envs] - self.num_frames

    def state_dict(self) -> dict[str, Any]:
        return {"frames": self.frames.clone(), "written": self.written.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["frames"].shape != self.frames.shape:
            raise ValueError(f"frame storage shaped {list(state['frames'].shape)} does not fit "
                             f"this buffer's {list(self.frames.shape)}")
        self.frames.copy_(state["frames"])
        self.written.copy_(state["written"])
