"""End-to-end training speed of reprl against Stable-Baselines3 with the same hyperparameters.

Both sides train the same agent on the same env with the same env count, batch sizes, update
schedule, network and torch threads; neither evaluates nor checkpoints while timed. On a GPU
(``device``) SB3 trains CNN policies there too and MLP policies on the CPU, as SB3 advises. With
``compile`` reprl's agents run with ``--compile``: ``reprl_sps`` then includes compiling, which
the row also reports on its own (``compile_s``) and subtracted (``reprl_steady_sps``, and its
ratio to SB3's, ``steady_ratio``: the median over the pairs with ``repeats``).
"""
from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from agents import DQN, PPO
from agents.compilation import compile_seconds

# Hyperparameters shared by both sides: rl-baselines3-zoo's tuned CartPole values, CleanRL's Atari ones.
# Each side gets the same torch thread count, the faster one for both: the CNNs use both cores, and
# so does PPO CartPole, whose 20 epochs on 256 samples ran 11% faster on two threads than on one
# here (reprl 14,706 and 15,002 steps/s against 13,381 and 13,211; SB3 7,634 and 7,959 against
# 7,514 and 7,613); DQN's 64-sample steps and the single-env loop gain nothing from a second.
PPO_CARTPOLE = dict(torch_threads=2, num_envs=8, num_steps=32, num_minibatches=1, update_epochs=20, gamma=0.98, gae_lambda=0.8,
                    ent_coef=0.0, learning_rate=1e-3, clip_coef=0.2)
DQN_CARTPOLE = dict(torch_threads=1, num_envs=1, learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1_000,
                    gamma=0.99, target_update_interval=10, train_frequency=256, gradient_steps=128,
                    exploration_fraction=0.16, end_e=0.04)
PPO_PONG = dict(torch_threads=2, num_envs=8, num_steps=128, num_minibatches=4, update_epochs=4, gamma=0.99, gae_lambda=0.95,
                ent_coef=0.01, learning_rate=2.5e-4, clip_coef=0.1)
DQN_PONG = dict(torch_threads=2, num_envs=1, learning_rate=1e-4, batch_size=32, buffer_size=100_000, learning_starts=2_000,
                gamma=0.99, target_update_interval=1_000, train_frequency=4, gradient_steps=1,
                exploration_fraction=0.1, end_e=0.01)


def reprl_sps(agent_cls, env_id: str, steps: int, hp: dict[str, Any]) -> float:
    agent = agent_cls.from_env(env_id, steps=steps, eval_every=0, checkpoint_every=0, eval_episodes=1,
                               log_every=10**9, **hp)
    with tempfile.TemporaryDirectory() as run_dir:
        from agents.runner import Runner

        summary = Runner(agent, run_dir=run_dir, progress=False).run()
    return summary["sps"]


def _sb3_env(env_id: str, num_envs: int):
    from stable_baselines3.common.env_util import make_atari_env, make_vec_env

    if "Pong" in env_id:
        from stable_baselines3.common.vec_env import VecFrameStack

        return VecFrameStack(make_atari_env(env_id, n_envs=num_envs, seed=0), n_stack=4)
    return make_vec_env(env_id, n_envs=num_envs, seed=0)


def sb3_sps(kind: str, env_id: str, steps: int, hp: dict[str, Any]) -> float:
    from stable_baselines3 import DQN as SB3DQN
    from stable_baselines3 import PPO as SB3PPO

    torch.set_num_threads(hp["torch_threads"])
    env = _sb3_env(env_id, hp["num_envs"])
    policy = "CnnPolicy" if "Pong" in env_id else "MlpPolicy"
    device = hp.get("device", "cpu") if policy == "CnnPolicy" else "cpu"
    if kind == "ppo":
        batch = hp["num_envs"] * hp["num_steps"] // hp["num_minibatches"]
        model = SB3PPO(policy, env, n_steps=hp["num_steps"], batch_size=batch, n_epochs=hp["update_epochs"],
                       gamma=hp["gamma"], gae_lambda=hp["gae_lambda"], ent_coef=hp["ent_coef"],
                       learning_rate=hp["learning_rate"], clip_range=hp["clip_coef"], device=device, seed=0)
    else:
        net = {} if "Pong" in env_id else {"policy_kwargs": {"net_arch": [256, 256]}}
        model = SB3DQN(policy, env, learning_rate=hp["learning_rate"], batch_size=hp["batch_size"],
                       buffer_size=hp["buffer_size"], learning_starts=hp["learning_starts"], gamma=hp["gamma"],
                       target_update_interval=hp["target_update_interval"], train_freq=hp["train_frequency"],
                       gradient_steps=hp["gradient_steps"], exploration_fraction=hp["exploration_fraction"],
                       exploration_final_eps=hp["end_e"], optimize_memory_usage=False, device=device, seed=0, **net)
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    return steps / (time.perf_counter() - start)


CASES: dict[str, tuple[type, str, str, dict[str, Any], int]] = {
    "ppo_cartpole": (PPO, "ppo", "CartPole-v1", PPO_CARTPOLE, 200_000),
    "dqn_cartpole": (DQN, "dqn", "CartPole-v1", DQN_CARTPOLE, 30_000),
    "ppo_pong": (PPO, "ppo", "PongNoFrameskip-v4", PPO_PONG, 12_288),
    "dqn_pong": (DQN, "dqn", "PongNoFrameskip-v4", DQN_PONG, 5_000),
}


def _pair_ratios(ours: list[float], theirs: list[float | None]) -> list[float | None]:
    """reprl's steps/s over SB3's, pair by pair (None where SB3 had no side)."""
    return [None if b is None else a / b for a, b in zip(ours, theirs)]


def _median_ratio(ratios: list[float | None]) -> float | None:
    return None if None in ratios else round(statistics.median(ratios), 3)


def run(names: list[str], quick: bool = False, ceiling: Callable[[str, float, int], dict] | None = None,
        cases: dict | None = None, sb3: Callable[[str, str, int, dict], float | None] | None = None,
        compile: bool = False, device: torch.device = torch.device("cpu"), repeats: int = 1) -> Iterator[dict]:
    """Both sides of each case in ``names`` (from ``cases``, timed for SB3 by ``sb3``, which may
    return None for no SB3 side); reprl's agents compiled when ``compile`` and on ``device``.

    ``repeats`` > 1 times the two sides in alternation that many times, so that a drift of the
    machine's speed during the run moves both: the row reports each side's median steps/s, the
    median of the pairs' ratios and every pair's ratio (``pair_ratios``)."""
    cases, sb3 = cases or CASES, sb3 or sb3_sps
    for name in names:
        agent_cls, kind, env_id, hp, steps = cases[name]
        hp = {**hp, "device": str(device)}
        if quick:
            steps = max(steps // 20, 2 * hp["num_envs"] * hp.get("num_steps", 1), 2 * hp.get("learning_starts", 0))
        ours, theirs, steady, compile_s = [], [], [], []
        for _ in range(repeats):
            compiled_before = compile_seconds()
            ours.append(reprl_sps(agent_cls, env_id, steps, {**hp, "compile": True} if compile else hp))
            compile_s.append(compile_seconds() - compiled_before)
            steady.append(steps / (steps / ours[-1] - compile_s[-1]))
            try:
                theirs.append(sb3(kind, env_id, steps, hp))
            except ImportError:
                theirs.append(None)
        pair_ratios = _pair_ratios(ours, theirs)
        row = {"case": name, "steps": steps, "device": str(device), "torch_threads": hp["torch_threads"],
               "reprl_sps": round(statistics.median(ours), 1),
               "sb3_sps": None if None in theirs else round(statistics.median(theirs), 1),
               "ratio": _median_ratio(pair_ratios)}
        if repeats > 1:
            row.update(repeats=repeats, pair_ratios=None if None in pair_ratios else [round(r, 3) for r in pair_ratios])
        if compile:
            row.update(compile_s=round(statistics.median(compile_s), 1),
                       reprl_steady_sps=round(statistics.median(steady), 1),
                       steady_ratio=_median_ratio(_pair_ratios(steady, theirs)))
        if ceiling is not None:
            row.update(ceiling(name, row["reprl_sps"], steps))
        yield row
