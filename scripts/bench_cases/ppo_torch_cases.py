"""End-to-end PPO speed on torch-native CartPole against Stable-Baselines3, for 8 to 4,096 envs.

reprl steps its batched torch CartPole (``backend="torch"``); SB3 steps ``make_vec_env``'s
DummyVecEnv of gymnasium CartPoles. Both sides train the same PPO (same rollout length,
minibatch size, epochs, discount, GAE lambda, learning rate, clipping, separate 64x64 tanh
actor and critic, the same torch threads) for the same number of env steps at each env count. On a
GPU, reprl's env and learner run there and the table goes on to 65,536 envs; SB3 stays on the CPU
(its advice for MLP policies) and stops at 4,096 envs: the larger budgets would take it minutes
per row.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import torch

from agents import PPO
from bench_cases import learning_cases

CASE = "ppo_torch_cartpole"
ENV_ID = "CartPole-v1"

# PPO's ``parallel`` preset for classic control (agents/ppo.py says what it reaches on CartPole)
# but for its evaluation and logging intervals (timed runs do neither), every remaining setting
# spelled out so that SB3 gets the same. SB3 takes these through
# ``learning_cases.sb3_sps`` with a constant learning rate and clipping range: the schedules
# change values, not the work done per step.
# The preset's torch default threads are pinned to the CPU count, so that both sides run with
# them whatever an earlier case of the same process set.
PPO_TORCH_CARTPOLE: dict[str, Any] = {
    **{name: value for name, value in PPO.presets["parallel:classic"].items()
       if name not in ("eval_every", "log_every")},
    "vf_coef": 0.5, "max_grad_norm": 0.5, "norm_adv": True, "encoder": "mlp",
    "torch_threads": PPO.presets["parallel:classic"]["torch_threads"] or os.cpu_count() or 1}

# Rollouts timed per env count: a few seconds a side up to 256 envs; at 1,024 envs the 2,097,152
# steps of the preset's learning run (agents/ppo.py), in which reprl's compiling (about 0.3 s from
# a warm inductor cache) weighs as it does in a run of its own, SB3 about 40 s; at 4,096 envs
# 1,048,576 steps, SB3 about 20 s.
ROLLOUTS = {8: 128, 64: 96, 256: 64, 1024: 128, 4096: 16}
GPU_ROLLOUTS = {**ROLLOUTS, 16384: 16, 65536: 8}  # reprl alone above 4,096
SB3_MAX_ENVS = 4096
QUICK_ROLLOUTS = {8: 2, 64: 2}


def budget(num_envs: int, rollouts: int, num_steps: int = PPO_TORCH_CARTPOLE["num_steps"]) -> int:
    """Env steps of ``rollouts`` whole rollouts of ``num_envs`` envs: each side ends on an update."""
    return rollouts * num_envs * num_steps


def run(quick: bool = False, device: torch.device = torch.device("cpu"), compile: bool = False,
        repeats: int = 1) -> Iterator[dict]:
    """One row per env count: ``num_envs``, ``steps``, ``reprl_sps``, ``sb3_sps`` and their ``ratio``
    (reprl's PPO compiled with ``compile``; each side timed ``repeats`` times in alternation, as
    ``learning_cases.run`` does)."""
    rollouts_per_count = QUICK_ROLLOUTS if quick else GPU_ROLLOUTS if device.type == "cuda" else ROLLOUTS
    for num_envs, rollouts in rollouts_per_count.items():
        hp = {**PPO_TORCH_CARTPOLE, "num_envs": num_envs}
        case = {CASE: (PPO, "ppo", ENV_ID, hp, budget(num_envs, rollouts))}
        sb3 = None if num_envs <= SB3_MAX_ENVS else lambda *_: None  # a row of reprl alone
        # quick=False: the budgets above are already the quick ones in quick mode.
        for row in learning_cases.run([CASE], quick=False, cases=case, sb3=sb3, compile=compile, device=device,
                                     repeats=repeats):
            yield {"case": CASE, "num_envs": num_envs, **row}
