"""Atari throughput: our rollout against raw ``AtariVectorEnv`` stepping, and the CPU ceiling.

On a CPU the Nature CNN's arithmetic dominates Atari training, so the useful question is how
close a run gets to the speed it would have if nothing but the network's passes (timed here,
eager PyTorch in its standard memory layout, same batch sizes) and raw env stepping took time.
"""
from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import torch
from gymnasium import spaces

from envs import make_env
from replay.rollout_buffer import RolloutBuffer
from representation.encoders import NatureCNN

FRAMES = spaces.Box(0, 255, (4, 84, 84), np.uint8)


def raw_env_sps(num_envs: int, steps: int) -> float:
    from ale_py import AtariVectorEnv

    env = AtariVectorEnv("pong", num_envs, autoreset_mode="SameStep", reward_clipping=False)
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 6, (steps, num_envs))
    start = time.perf_counter()
    for action in actions:
        env.step(action)
    elapsed = time.perf_counter() - start
    env.close()
    return steps * num_envs / elapsed


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


def _time(fn, repeats: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def network_seconds(batch: int, backward: bool, repeats: int) -> float:
    """Seconds per pass of a Nature CNN with a Q/policy head at ``batch`` (eager, same threads),
    its weights in PyTorch's standard layout, as every peer's: the channels-last weights of
    reprl's own encoders are one of the ways a run goes above this ceiling."""
    net = torch.nn.Sequential(NatureCNN(FRAMES), torch.nn.Linear(512, 7)).to(memory_format=torch.contiguous_format)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    obs = torch.randint(0, 256, (batch, 4, 84, 84), dtype=torch.uint8)
    if not backward:
        return _time(lambda: net(obs), repeats)

    def step():
        optimizer.zero_grad()
        net(obs).square().mean().backward()
        optimizer.step()
    return _time(step, repeats)


def ceiling(case: str, measured_sps: float, steps: int, quick: bool = False) -> dict:
    reps = 3 if quick else 20
    if case == "ppo_pong":  # per iteration: T acting passes at N, E*M updates at T*N/M, T env steps
        num_envs, num_steps, minibatches, epochs = 8, 128, 4, 4
        env_seconds = num_envs / raw_env_sps(num_envs, 50 if quick else 500)
        seconds = num_steps * (network_seconds(num_envs, False, reps) + env_seconds) + \
            minibatches * epochs * network_seconds(num_envs * num_steps // minibatches, True, reps)
        sps = num_steps * num_envs / seconds
    else:  # dqn_pong: random warm-up steps cost one env step; later ones also an acting pass at 1
        # and a quarter update at 32 (train_frequency 4)
        from bench_cases.learning_cases import CASES

        warmup = CASES[case][3]["learning_starts"]
        env_seconds = 1 / raw_env_sps(1, 100 if quick else 1000)
        learning_seconds = network_seconds(1, False, reps * 5) + env_seconds + network_seconds(32, True, reps) / 4
        sps = steps / (warmup * env_seconds + (steps - warmup) * learning_seconds)
    return {"ceiling_sps": round(sps, 1), "fraction_of_ceiling": round(measured_sps / sps, 3)}


def run(quick: bool = False) -> Iterator[dict]:
    steps = 200 if quick else 3_000
    raw = raw_env_sps(8, steps)
    ours = rollout_sps(8, steps)
    yield {"case": "atari_rollout", "num_envs": 8, "reprl_sps": round(ours, 1), "raw_env_sps": round(raw, 1),
           "ratio": round(ours / raw, 3)}
