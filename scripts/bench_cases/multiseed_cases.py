"""Throughput of K seeds trained together in one process (``--num-seeds K``) against K runs of
one seed each, one after another, with the agent's tuned settings on a torch-native env, neither
evaluating nor checkpointing while timed: ``multiseed`` for PPO on CartPole, ``multiseed_trpo``
for TRPO on CartPole (rollouts of 2 envs x 512 steps, 20 critic epochs each), ``multiseed_dqn``
for DQN on CartPole (its first 1,000 steps per seed are random play, the rest trains 128 gradient
steps every 256 steps), ``multiseed_rainbow`` for the same with ``--preset rainbow`` (double,
dueling, 3-step, C51, NoisyNet, prioritized replay), ``multiseed_sac`` for SAC on Pendulum (100
steps of random play, then a gradient step on 256 transitions per env step). Each side runs at its fastest on this machine: a lone small-MLP run on one
torch thread (a second one only adds synchronisation), the K-seed run, whose stacked updates are
real arithmetic, on two. On a GPU both sides run there."""
from __future__ import annotations

import statistics
import tempfile
from collections.abc import Iterator

import torch

from agents import DQN, PPO, SAC, TRPO
from agents.base import Agent
from agents.multi_seed import build_multi_seed
from agents.runner import Runner

SEEDS = (1, 4, 16)
# case -> (agent, env, steps per seed, quick steps per seed, settings beyond the env's preset)
CASES: dict[str, tuple[type[Agent], str, int, int, dict]] = {
    "multiseed": (PPO, "CartPole-v1", 51_200, 512, {}),  # 200 rollouts of 8 envs x 32 steps
    "multiseed_trpo": (TRPO, "CartPole-v1", 20_480, 1_024, {}),  # 20 rollouts (quick: 1)
    "multiseed_dqn": (DQN, "CartPole-v1", 8_192, 1_536, {}),  # 7,192 steps of training: 3,584 gradient steps
    "multiseed_rainbow": (DQN, "CartPole-v1", 8_192, 1_536, {"preset": "rainbow"}),
    "multiseed_sac": (SAC, "Pendulum-v1", 2_000, 300, {}),  # 1,900 gradient steps
}
SETTINGS = dict(backend="torch", eval_every=0, checkpoint_every=0, eval_episodes=1, log_every=10**9)
SINGLE_SEED_THREADS, MULTI_SEED_THREADS = 1, 2


def steps_per_second(agent_cls: type[Agent], env_id: str, num_seeds: int | None, steps: int,
                     device: torch.device, settings: dict) -> float:
    """Env steps per second summed over the seeds (``None``: a plain one-seed run)."""
    threads = SINGLE_SEED_THREADS if num_seeds is None else MULTI_SEED_THREADS
    agent = agent_cls.from_env(env_id, steps=steps, torch_threads=threads, device=str(device), **SETTINGS,
                               **settings)
    if num_seeds is not None:
        agent = build_multi_seed(agent_cls, agent.config, agent.observation_space, agent.action_space,
                                 list(range(num_seeds)))
    with tempfile.TemporaryDirectory() as run_dir:
        summaries = Runner(agent, run_dir=run_dir, progress=False).run_seeds()
    return summaries[0]["sps"] * len(summaries)


def run(case: str, quick: bool = False, device: torch.device = torch.device("cpu"),
        repeats: int = 1) -> Iterator[dict]:
    """One row per K: ``seeds``, ``sps`` (all seeds together), ``single_seed_sps`` and their ``ratio``
    (the speed-up over running the K seeds one after another).

    ``repeats`` > 1 times a lone seed and the K seeds in alternation that many times for each K:
    the row reports each side's median, the median of the pairs' ratios and every pair's ratio
    (``pair_ratios``); a lone seed's speed varies by a fifth from run to run here."""
    agent_cls, env_id, steps, quick_steps, settings = CASES[case]
    steps = quick_steps if quick else steps
    for num_seeds in (1, 2) if quick else SEEDS:
        singles, togethers = [], []
        for _ in range(repeats):
            singles.append(steps_per_second(agent_cls, env_id, None, steps, device, settings))
            togethers.append(steps_per_second(agent_cls, env_id, num_seeds, steps, device, settings))
        pair_ratios = [together / single for single, together in zip(singles, togethers)]
        row = {"case": case, "agent": agent_cls.name, "env": env_id, "seeds": num_seeds, "steps_per_seed": steps,
               "device": str(device), "torch_threads": MULTI_SEED_THREADS,
               "single_seed_torch_threads": SINGLE_SEED_THREADS,
               "sps": round(statistics.median(togethers), 1), "single_seed_sps": round(statistics.median(singles), 1),
               "ratio": round(statistics.median(pair_ratios), 3), **settings}
        if repeats > 1:
            row.update(repeats=repeats, pair_ratios=[round(r, 3) for r in pair_ratios])
        yield row
