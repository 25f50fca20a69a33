"""Synthetic multi-env trajectories shaped like ale-py's: frame stacks that shift by one frame,
episode starts after a full reset (older frames zero) or a life loss (older frames real)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Trajectory:
    obs: list[torch.Tensor] = field(default_factory=list)        # each [N, K, H, W] uint8
    action: list[torch.Tensor] = field(default_factory=list)
    reward: list[torch.Tensor] = field(default_factory=list)
    next_obs: list[torch.Tensor] = field(default_factory=list)
    terminated: list[torch.Tensor] = field(default_factory=list)
    truncated: list[torch.Tensor] = field(default_factory=list)


def _first_stacks(num_envs: int, stack: int, gen: torch.Generator) -> torch.Tensor:
    stacks = torch.randint(0, 256, (num_envs, stack, 3, 3), generator=gen, dtype=torch.uint8)
    full_reset = torch.rand(num_envs, generator=gen) < 0.5
    stacks[:, :-1] *= (~full_reset).view(-1, 1, 1, 1).to(torch.uint8)  # zeros but the newest
    return stacks


def play(buffers, steps: int, num_envs: int, stack: int, seed: int, p_end: float = 0.15) -> Trajectory:
    """Add ``steps`` steps to every buffer in ``buffers``; return what was added."""
    gen = torch.Generator().manual_seed(seed)
    traj = Trajectory()
    obs = _first_stacks(num_envs, stack, gen)
    for _ in range(steps):
        frame = torch.randint(0, 256, (num_envs, 1, 3, 3), generator=gen, dtype=torch.uint8)
        next_obs = torch.cat([obs[:, 1:], frame], dim=1)
        terminated = torch.rand(num_envs, generator=gen) < p_end
        truncated = (torch.rand(num_envs, generator=gen) < p_end / 2) & ~terminated
        action = torch.randint(0, 5, (num_envs,), generator=gen)
        reward = torch.randn(num_envs, generator=gen)
        for buffer in buffers:
            buffer.add(obs, action, reward, next_obs, terminated, truncated)
        for name, value in zip(("obs", "action", "reward", "next_obs", "terminated", "truncated"),
                               (obs, action, reward, next_obs, terminated, truncated)):
            getattr(traj, name).append(value)
        done = (terminated | truncated).view(-1, 1, 1, 1)
        obs = torch.where(done, _first_stacks(num_envs, stack, gen), next_obs)
    return traj


def expected_transition(traj: Trajectory, step: int, env: int, n: int, gamma: float) -> dict:
    """Brute-force n-step transition starting at ``step`` in ``env``."""
    reward, m = 0.0, 0
    for k in range(n):
        reward += gamma ** k * float(traj.reward[step + k][env])
        m = k + 1
        if traj.terminated[step + k][env] or traj.truncated[step + k][env]:
            break
    last = step + m - 1
    return {"obs": traj.obs[step][env], "action": traj.action[step][env], "reward": reward,
            "next_obs": traj.next_obs[last][env], "terminated": float(traj.terminated[last][env]),
            "discount": gamma ** m,
            "next_action": traj.action[step + m][env] if step + m < len(traj.action) else None,
            "window_ended": bool(traj.terminated[last][env] or traj.truncated[last][env])}


def stored_frames_valid(traj: Trajectory, num_frames: int, stack: int) -> list[list[bool]]:
    """Per step and env, whether the step's first obs frame is still in a ring of ``num_frames``
    frames fed K frames at each episode start and one per step."""
    num_envs = traj.obs[0].shape[0]
    written, start, first = [0] * num_envs, [True] * num_envs, []
    for t in range(len(traj.obs)):
        row = []
        for e in range(num_envs):
            newest = written[e] + (stack - 1 if start[e] else -1)
            row.append(newest - (stack - 1))
            written[e] = newest + 2
            start[e] = bool(traj.terminated[t][e] or traj.truncated[t][e])
        first.append(row)
    return [[f >= written[e] - num_frames for e, f in enumerate(row)] for row in first]
