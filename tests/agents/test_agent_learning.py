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
def test_dqn_learns_cartpole_within_20k_steps_on_two_of_three_seeds(tmp_path):
    # One seed's evaluation after 20k steps ranges from about 90 to 160 (seeds 0-4), so the test
    # asks for most of a few seeds, as the A2C test does.
    returns = [_final_eval(DQN.from_env("CartPole-v1", seed=seed, steps=20_000, eval_every=0), tmp_path / str(seed))
               for seed in (0, 1, 2)]
    assert sum(r >= 100 for r in returns) >= 2, returns
