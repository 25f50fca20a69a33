"""``ppo_torch_warm``: PPO's rollouts on torch-native CartPole once warm, eager against
``--compile``, in one process.

``ppo_torch_cartpole``'s compiled rows subtract the compile time but still count each graph's
first calls, which on a GPU load and tune its Triton kernels: seconds of a run of a few seconds.
Here an eager and a compiled agent (``ppo_torch_cartpole``'s settings) each play and learn
``WARMUP`` rollouts first, then ``ROUNDS`` rollouts each, in alternation. A rollout's env steps
(acting, stepping, storing: what the ``Runner`` does each step, without its logging) and the
update that ends it are timed apart, the device synchronised at each boundary; a row gives their
medians and ``ratio``, the compiled agent's steps per second over the eager one's. The process keeps
the host memory it frees, as the ``Runner``'s training processes do (``agents.host_allocator``).
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Iterator

import torch

from agents import PPO
from agents.compilation import compile_env_step
from agents.host_allocator import keep_freed_host_memory
from agents.runner import make_train_env
from bench_cases.ppo_torch_cases import ENV_ID, PPO_TORCH_CARTPOLE

CASE = "ppo_torch_warm"
WARMUP, ROUNDS = 3, 5
SIZES = {"cpu": (1024, 4096), "cuda": (1024, 4096, 16384, 65536)}
QUICK_SIZES, QUICK_WARMUP, QUICK_ROUNDS = (64,), 1, 1


class WarmRollouts:
    """A PPO agent and its torch env, stepped rollout by rollout as the ``Runner`` steps them."""

    def __init__(self, num_envs: int, device: torch.device, compile: bool):
        self.device = device
        self.agent = PPO.from_env(ENV_ID, device=str(device), compile=compile, eval_every=0, checkpoint_every=0,
                                  steps=10**12, **{**PPO_TORCH_CARTPOLE, "num_envs": num_envs})
        self.env = make_train_env(self.agent.config)
        if compile:
            compile_env_step(self.env, self.agent.config.compile_mode)
        self.agent.setup_training(num_envs)
        self.obs, self.step = self.env.reset(seed=self.agent.config.seed), 0

    def rollout(self) -> tuple[float, float]:
        """Seconds of one rollout's env steps and of the update that ends it."""
        agent, env = self.agent, self.env
        start = self._now()
        for remaining in range(agent.config.num_steps - 1, -1, -1):
            action, env_action, extras = agent.rollout_action(self.obs, self.step)
            next_obs, reward, terminated, truncated, info = env.step(env_action)
            agent.observe(self.obs, action, reward, info["final_obs"], terminated, truncated, extras)
            self.obs, self.step = next_obs, self.step + env.num_envs
            if remaining == 0:
                stepped = self._now()
            agent.after_step(self.obs, self.step)
        return stepped - start, self._now() - stepped

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()


def run(quick: bool = False, device: torch.device = torch.device("cpu")) -> Iterator[dict]:
    """One row per env count: the medians of each side's rollout and update milliseconds, its
    steps per second and the ``ratio`` compiled over eager."""
    torch.set_num_threads(PPO_TORCH_CARTPOLE["torch_threads"])
    keep_freed_host_memory()
    warmup, rounds = (QUICK_WARMUP, QUICK_ROUNDS) if quick else (WARMUP, ROUNDS)
    for num_envs in QUICK_SIZES if quick else SIZES[device.type]:
        sides = {"eager": WarmRollouts(num_envs, device, False), "compiled": WarmRollouts(num_envs, device, True)}
        for side in sides.values():
            for _ in range(warmup):
                side.rollout()
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
        for _ in range(rounds):
            for name, side in sides.items():
                times[name].append(side.rollout())
        row = {"case": CASE, "num_envs": num_envs, "device": str(device), "rounds": rounds}
        steps = num_envs * PPO_TORCH_CARTPOLE["num_steps"]
        for name, timed in times.items():
            rollout_s, update_s = (statistics.median(part) for part in zip(*timed))
            row |= {f"{name}_rollout_ms": round(rollout_s * 1e3, 2), f"{name}_update_ms": round(update_s * 1e3, 2),
                    f"{name}_sps": round(steps / (rollout_s + update_s), 1)}
        yield {**row, "ratio": round(row["compiled_sps"] / row["eager_sps"], 3)}
