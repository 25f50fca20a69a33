"""Atari throughput: ``make_env`` stepping with everything reprl adds against raw
``AtariVectorEnv`` stepping with the same env count, and DQN training with ale-py's asynchronous
mode against the same run with all envs in lockstep."""
from __future__ import annotations

import time
from collections.abc import Iterator

import torch

from agents import DQN
from bench_cases.ceiling import raw_env_sps
from bench_cases.learning_cases import DQN_PONG, reprl_sps
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


def run_async_dqn(quick: bool = False, num_envs: int = 8, env_batch_size: int = 4) -> Iterator[dict]:
    """``dqn_pong``'s settings with ``num_envs`` envs: acting on and learning from the first
    ``env_batch_size`` ready while ale-py steps the rest, against all envs in lockstep."""
    hp = {**DQN_PONG, "num_envs": num_envs}
    steps = 2 * hp["learning_starts"] if quick else 20_000
    lockstep = reprl_sps(DQN, "PongNoFrameskip-v4", steps, hp)
    asynchronous = reprl_sps(DQN, "PongNoFrameskip-v4", steps, {**hp, "env_batch_size": env_batch_size})
    yield {"case": "dqn_pong_async", "steps": steps, "num_envs": num_envs, "env_batch_size": env_batch_size,
           "torch_threads": hp["torch_threads"], "reprl_sps": round(asynchronous, 1),
           "lockstep_sps": round(lockstep, 1), "ratio": round(asynchronous / lockstep, 3)}
