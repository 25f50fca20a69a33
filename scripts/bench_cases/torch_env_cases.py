"""Torch-native classic control against gymnasium's sync vector env: env steps per second with
random actions, for 1 to 65,536 envs (to 1,048,576 on a GPU), both measured in the same run on
the same threads. Gymnasium steps on the CPU whatever the device of the torch-native env."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import gymnasium as gym
import torch

from envs.torch_envs import TORCH_ENVS, make_torch_env

NUM_ENVS = (1, 16, 256, 4096, 65536)
GPU_NUM_ENVS = NUM_ENVS + (262144, 1048576)
GYMNASIUM_MAX_ENVS = 4096  # creating 65k Python envs alone takes minutes
ACTION_POOL = 16  # pre-drawn action batches, cycled, so drawing actions is not timed


def _steps_per_second(step: Callable[[int], None], num_envs: int, seconds: float,
                      synchronize: Callable[[], None] = lambda: None) -> float:
    """Env steps per second of ``step(i)`` (one batched step of ``num_envs`` envs); ``synchronize``
    waits for queued device work, so a GPU's steps are counted only once they are done."""
    step(0)
    synchronize()
    calls, start = 0, time.perf_counter()
    while True:
        step(calls + 1)
        calls += 1
        if time.perf_counter() - start >= seconds:
            synchronize()
            return calls * num_envs / (time.perf_counter() - start)


def _torch_env_speed(env_id: str, num_envs: int, seconds: float, device: torch.device) -> float:
    env = make_torch_env(env_id, num_envs, seed=0, device=device)
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
    pool = [actions.to(device) for actions in pool]
    synchronize = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    return _steps_per_second(lambda i: env.step(pool[i % ACTION_POOL]), num_envs, seconds, synchronize)


def _gymnasium_speed(env_id: str, num_envs: int, seconds: float) -> float:
    envs = gym.make_vec(env_id, num_envs, vectorization_mode="sync",
                        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP})
    envs.reset(seed=0)
    envs.action_space.seed(0)
    pool = [envs.action_space.sample() for _ in range(ACTION_POOL)]
    speed = _steps_per_second(lambda i: envs.step(pool[i % ACTION_POOL]), num_envs, seconds)
    envs.close()
    return speed


def run(quick: bool = False, device: torch.device = torch.device("cpu")) -> Iterator[dict]:
    seconds = 0.05 if quick else 3.0 if device.type == "cpu" else 1.0  # a GPU's rate settles sooner
    env_ids = ["CartPole-v1"] if quick else list(TORCH_ENVS)
    sizes = (1, 16) if quick else GPU_NUM_ENVS if device.type == "cuda" else NUM_ENVS
    for env_id in env_ids:
        for num_envs in sizes:
            row = {"case": "torch_env", "env": env_id, "num_envs": num_envs, "device": str(device),
                   "steps_per_s": round(_torch_env_speed(env_id, num_envs, seconds, device)),
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
