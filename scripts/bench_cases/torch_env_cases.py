"""Torch-native classic control against gymnasium's sync vector env: env steps per second with
random actions, for 1 to 65,536 envs, both measured in the same run on the same threads."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import gymnasium as gym
import torch

from envs.torch_envs import TORCH_ENVS, make_torch_env

NUM_ENVS = (1, 16, 256, 4096, 65536)
GYMNASIUM_MAX_ENVS = 4096  # creating 65k Python envs alone takes minutes
ACTION_POOL = 16  # pre-drawn action batches, cycled, so drawing actions is not timed


def _steps_per_second(step: Callable[[int], None], num_envs: int, seconds: float) -> float:
    """Env steps per second of ``step(i)`` (one batched step of ``num_envs`` envs)."""
    step(0)
    calls, start = 0, time.perf_counter()
    while True:
        step(calls + 1)
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls * num_envs / elapsed


def _torch_env_speed(env_id: str, num_envs: int, seconds: float) -> float:
    env = make_torch_env(env_id, num_envs, seed=0)
    env.reset()
    space = env.single_action_space
    generator = torch.Generator().manual_seed(0)
    if isinstance(space, gym.spaces.Discrete):
        pool = [torch.randint(0, int(space.n), (num_envs,), generator=generator)
                for _ in range(ACTION_POOL)]
    else:
        low, high = float(space.low[0]), float(space.high[0])
        pool = [torch.rand(num_envs, *space.shape, generator=generator) * (high - low) + low
                for _ in range(ACTION_POOL)]
    return _steps_per_second(lambda i: env.step(pool[i % ACTION_POOL]), num_envs, seconds)


def _gymnasium_speed(env_id: str, num_envs: int, seconds: float) -> float:
    envs = gym.make_vec(env_id, num_envs, vectorization_mode="sync",
                        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP})
    envs.reset(seed=0)
    envs.action_space.seed(0)
    pool = [envs.action_space.sample() for _ in range(ACTION_POOL)]
    speed = _steps_per_second(lambda i: envs.step(pool[i % ACTION_POOL]), num_envs, seconds)
    envs.close()
    return speed


def run(quick: bool = False) -> Iterator[dict]:
    seconds = 0.05 if quick else 3.0
    env_ids = ["CartPole-v1"] if quick else list(TORCH_ENVS)
    sizes = (1, 16) if quick else NUM_ENVS
    for env_id in env_ids:
        for num_envs in sizes:
            row = {"case": "torch_env", "env": env_id, "num_envs": num_envs,
                   "steps_per_s": round(_torch_env_speed(env_id, num_envs, seconds)),
                   "gymnasium_steps_per_s": None,
                   "threads": torch.get_num_threads()}
            if num_envs <= GYMNASIUM_MAX_ENVS:
                row["gymnasium_steps_per_s"] = round(_gymnasium_speed(env_id, num_envs, seconds))
                row["speedup"] = round(row["steps_per_s"] / row["gymnasium_steps_per_s"], 2)
            else:
                row["note"] = (f"gymnasium not measured above {GYMNASIUM_MAX_ENVS} envs: "
                               "creating that many Python envs takes minutes")
            yield row


if __name__ == "__main__":
    import json

    for result in run():
        print(json.dumps(result), flush=True)
