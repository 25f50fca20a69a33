"""Learning smoke tests: fixed seeds, the published presets, budgets a broken agent cannot pass.

A uniformly random CartPole policy scores about 22; an agent with a wrong sign, target or
advantage stays far below these thresholds.
"""
import json

import pytest

from agents import DQN, PPO


def _final_eval(agent, run_dir) -> float:
    agent.learn(run_dir=run_dir, progress=False)
    return json.loads((run_dir / "summary.json").read_text())["eval_return_mean"]


@pytest.mark.slow
def test_ppo_solves_cartpole_within_100k_steps(tmp_path):
    agent = PPO.from_env("CartPole-v1", seed=1, steps=100_000, eval_every=0)
    assert _final_eval(agent, tmp_path / "run") >= 475


@pytest.mark.slow
def test_dqn_learns_cartpole_within_20k_steps(tmp_path):
    agent = DQN.from_env("CartPole-v1", seed=1, steps=20_000, eval_every=0)
    assert _final_eval(agent, tmp_path / "run") >= 100
