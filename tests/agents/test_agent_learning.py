"""Learning smoke tests: fixed seeds, the published presets, budgets a broken agent cannot pass.

A random CartPole policy scores about 22; an agent with a wrong sign, target or advantage stays
far below these thresholds.
"""
import pytest

from agents import DQN, PPO


@pytest.mark.slow
def test_ppo_solves_cartpole_within_100k_steps(tmp_path):
    agent = PPO.from_env("CartPole-v1", seed=1, steps=100_000, eval_every=0)
    summary_path = tmp_path / "run" / "summary.json"
    agent.learn(run_dir=tmp_path / "run", progress=False)
    import json

    summary = json.loads(summary_path.read_text())
    assert summary["eval_return_mean"] >= 475, summary
