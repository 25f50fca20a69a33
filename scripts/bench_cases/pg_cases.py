"""Training speed of reprl's A2C (CartPole) and SAC (Pendulum) against Stable-Baselines3 with the
same hyperparameters, env count, network sizes and torch threads; neither side evaluates or
checkpoints while timed."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from agents.a2c import A2C
from agents.sac import SAC
from bench_cases import learning_cases

# rl-baselines3-zoo a2c.yml (CartPole-v1) on SB3's A2C defaults; sac.yml (Pendulum-v1) on SB3's SAC defaults.
A2C_CARTPOLE = dict(torch_threads=1, num_envs=8, num_steps=5, gamma=0.99, gae_lambda=1.0, ent_coef=0.0, vf_coef=0.5,
                    learning_rate=7e-4, max_grad_norm=0.5)
SAC_PENDULUM = dict(torch_threads=1, num_envs=1, learning_rate=1e-3, buffer_size=1_000_000, batch_size=256, learning_starts=100,
                    gamma=0.99, tau=0.005, train_frequency=1, gradient_steps=1)

CASES: dict[str, tuple[type, str, str, dict[str, Any], int]] = {
    "a2c_cartpole": (A2C, "a2c", "CartPole-v1", A2C_CARTPOLE, 100_000),
    "sac_pendulum": (SAC, "sac", "Pendulum-v1", SAC_PENDULUM, 5_000),
}


def sb3_sps(kind: str, env_id: str, steps: int, hp: dict[str, Any]) -> float:
    from stable_baselines3 import A2C as SB3A2C
    from stable_baselines3 import SAC as SB3SAC
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(hp["torch_threads"])
    env = make_vec_env(env_id, n_envs=hp["num_envs"], seed=0)
    if kind == "a2c":
        model = SB3A2C("MlpPolicy", env, n_steps=hp["num_steps"], gamma=hp["gamma"], gae_lambda=hp["gae_lambda"],
                       ent_coef=hp["ent_coef"], vf_coef=hp["vf_coef"], learning_rate=hp["learning_rate"],
                       max_grad_norm=hp["max_grad_norm"], device="cpu", seed=0)
    else:
        model = SB3SAC("MlpPolicy", env, learning_rate=hp["learning_rate"], buffer_size=hp["buffer_size"],
                       batch_size=hp["batch_size"], learning_starts=hp["learning_starts"], gamma=hp["gamma"],
                       tau=hp["tau"], train_freq=hp["train_frequency"], gradient_steps=hp["gradient_steps"],
                       device="cpu", seed=0)
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    return steps / (time.perf_counter() - start)


def run(quick: bool = False, names: list[str] | None = None, compile: bool = False,
        ceiling: Callable[[str, float, int], dict] | None = None, repeats: int = 1) -> Iterator[dict]:
    return learning_cases.run(names or list(CASES), quick, ceiling, cases=CASES, sb3=sb3_sps, compile=compile,
                              repeats=repeats)
