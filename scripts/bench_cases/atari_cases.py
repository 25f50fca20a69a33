"""Atari rollout throughput: ``make_env`` stepping with everything reprl adds against raw
``AtariVectorEnv`` stepping with the same env count."""
from __future__ import annotations

import time
from collections.abc import Iterator

import torch

from bench_cases.ceiling import raw_env_sps
from envs import make_env
from replay.rollout_buffer import RolloutBuffer


def rollout_sps(num_envs: int, steps: int) -> float:
    """``make_env`` stepping with tensors, episode statistics, reward clipping and rollout storage."""
    env = make_env("PongNoFrameskip-v4", num_envs, seed=0)
    buffer = RolloutBuffer(128, num_envs, env.single_observation_space, env.single_action_space)
    obs = env.reset()
    actions = torch.randint(0, 6, (steps, num_envs), generator=torch.Generator().manual_seed(0))
    zeros = torch.zeros(num_envs)
    start = time.perf_counter()
    for action in actions:
        next_obs, reward, terminated, truncated, info = env.step(action)
        buffer.add(obs, action, zeros, zeros, reward, terminated, truncated)
        if buffer.step == buffer.num_steps:
            buffer.reset()
        obs = next_obs
    elapsed = time.perf_counter() - start
    env.close()
    return steps * num_envs / elapsed


def run(quick: bool = False) -> Iterator[dict]:
    steps = 200 if quick else 3_000
    raw = raw_env_sps("PongNoFrameskip-v4", 8, steps)
    ours = rollout_sps(8, steps)
    yield {"case": "atari_rollout", "num_envs": 8, "reprl_sps": round(ours, 1), "raw_env_sps": round(raw, 1),
           "ratio": round(ours / raw, 3)}
