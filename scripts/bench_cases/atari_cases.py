"""Atari throughput: ``make_env`` stepping with everything reprl adds against raw
``AtariVectorEnv`` stepping with the same env count (the two alternated), raw stepping with the
calling thread busy between steps, and DQN training with ale-py's asynchronous mode against the
same run with all envs in lockstep."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from agents import DQN
from bench_cases.ceiling import raw_vector_env
from bench_cases.learning_cases import DQN_PONG, reprl_sps
from envs import VecEnv, make_env
from replay.rollout_buffer import RolloutBuffer


ROUNDS = 5  # the two sides alternate, so a drift of the machine's speed moves both alike
GAPS_US = (0, 50, 100, 150, 200, 300, 400)


def rollout(env: VecEnv) -> Callable[[Tensor], None]:
    """A step of ``env`` with tensors, episode statistics, reward clipping and rollout storage."""
    buffer = RolloutBuffer(128, env.num_envs, env.single_observation_space, env.single_action_space)
    obs = env.reset()
    zeros = torch.zeros(env.num_envs)

    def step(action: Tensor) -> None:
        nonlocal obs
        next_obs, reward, terminated, truncated, info = env.step(action)
        buffer.add(obs, action, zeros, zeros, reward, terminated, truncated)
        if buffer.step == buffer.num_steps:
            buffer.reset()
        obs = next_obs
    return step


def steps_per_second(step: Callable[[Tensor], None], actions: Tensor) -> float:
    start = time.perf_counter()
    for action in actions:
        step(action)
    return actions.numel() / (time.perf_counter() - start)


def time_between_steps(vector_env) -> list[int]:
    """Wraps ``vector_env.step`` to record the nanoseconds from each step's return to the next
    call: the caller's own work between env steps (the list fills as the env steps)."""
    gaps: list[int] = []
    step, last_return = vector_env.step, None

    def timed_step(actions):
        nonlocal last_return
        called = time.perf_counter_ns()
        if last_return is not None:
            gaps.append(called - last_return)
        result = step(actions)
        last_return = time.perf_counter_ns()
        return result
    vector_env.step = timed_step
    return gaps


def run(quick: bool = False) -> Iterator[dict]:
    """``between_steps_us``: the median time from the return of ale-py's step to its next call,
    reprl's rollout work against the raw loop's (where idle cores halt, work of more than about
    100 us there costs more than its length: ``atari_step_gap``)."""
    num_envs, steps = 8, 200 if quick else 3_000
    actions = torch.randint(0, 6, (steps, num_envs), generator=torch.Generator().manual_seed(0))
    env, raw_env = make_env("PongNoFrameskip-v4", num_envs, seed=0), raw_vector_env("PongNoFrameskip-v4", num_envs)
    gaps = {"reprl": time_between_steps(env.env), "raw": time_between_steps(raw_env)}
    try:
        ours, raw = rollout(env), (lambda action: raw_env.step(action.numpy()))
        pairs = [(steps_per_second(raw, chunk), steps_per_second(ours, chunk)) for chunk in actions.chunk(ROUNDS)]
    finally:
        env.close()
        raw_env.close()
    raw_sps, ours_sps = (statistics.median(side) for side in zip(*pairs))
    yield {"case": "atari_rollout", "num_envs": num_envs, "steps": steps, "reprl_sps": round(ours_sps, 1),
           "raw_env_sps": round(raw_sps, 1), "ratio": round(statistics.median(o / r for r, o in pairs), 3),
           "pair_ratios": [round(o / r, 3) for r, o in pairs],
           "between_steps_us": {side: round(statistics.median(gap) / 1e3, 1) for side, gap in gaps.items()}}


def busy_for(microseconds: float) -> None:
    """Keeps the calling thread running, as a rollout's own work between env steps does."""
    end = time.perf_counter() + microseconds * 1e-6
    while time.perf_counter() < end:
        pass


def run_step_gap(quick: bool = False) -> Iterator[dict]:
    """Raw stepping of 8 Pong envs with the calling thread busy for ``gap_us`` between steps
    (the gaps alternated over ``ROUNDS`` rounds, medians): what per-step work costs on this host
    beyond its own duration. ``ratio`` is the steps/s against no gap, ``ratio_if_gap_costs_itself``
    what it would be if the gap cost its length and nothing more. Where a core left idle halts at
    once (a virtual machine without halt polling), ale-py's threads wake slowly after a long gap,
    which ``atari_rollout``'s reprl side pays and its raw side never does."""
    num_envs, steps = 8, 40 if quick else 300
    actions = torch.randint(0, 6, (steps, num_envs), generator=torch.Generator().manual_seed(0))
    env = raw_vector_env("PongNoFrameskip-v4", num_envs)
    try:
        rates: dict[int, list[float]] = {gap: [] for gap in GAPS_US}
        for _ in range(ROUNDS):
            for gap in GAPS_US:
                rates[gap].append(steps_per_second(lambda action: (env.step(action.numpy()), busy_for(gap)),
                                                   actions))
    finally:
        env.close()
    no_gap_step_us = 1e6 * num_envs / statistics.median(rates[0])
    for gap in GAPS_US:
        sps = statistics.median(rates[gap])
        yield {"case": "atari_step_gap", "num_envs": num_envs, "gap_us": gap, "raw_env_sps": round(sps, 1),
               "ratio": round(sps / statistics.median(rates[0]), 3),
               "ratio_if_gap_costs_itself": round(no_gap_step_us / (no_gap_step_us + gap), 3)}


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
