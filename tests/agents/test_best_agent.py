"""``best_agent.pt``: the agent of a run's best evaluation, as SB3's EvalCallback keeps it."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from agents import DQN, PPO
from agents.base import AGENT_FORMAT, Agent
from agents.checkpoint import load_checkpoint
from agents.evaluation import evaluate, make_eval_env
from agents.runner import BEST_AGENT, CHECKPOINT, Runner

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import evaluate as evaluate_script  # noqa: E402  (scripts/evaluate.py)

SETTINGS = dict(steps=3_000, num_envs=2, learning_starts=300, train_frequency=4, gradient_steps=1, batch_size=32,
                target_update_interval=100, buffer_size=5_000, eval_every=300, eval_episodes=3, log_every=100,
                checkpoint_every=1_000)


def evaluations(run_dir) -> list[tuple[int, float]]:
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(line["step"], line["eval/return_mean"]) for line in lines if "eval/return_mean" in line]


def test_the_best_agent_is_the_one_of_the_first_best_evaluation(tmp_path):
    agent = DQN.from_env("CartPole-v1", seed=2, **SETTINGS)
    summary = Runner(agent, run_dir=tmp_path, progress=False).run()
    history = evaluations(tmp_path)
    assert len(history) == 10 and len({mean for _, mean in history}) > 1  # the policy moved in between
    best_mean = max(mean for _, mean in history)
    best_step = next(step for step, mean in history if mean == best_mean)
    saved = load_checkpoint(tmp_path / BEST_AGENT, AGENT_FORMAT)
    assert saved["best"] == {"step": best_step, "eval_return_mean": best_mean}
    assert (summary["best_eval_step"], summary["best_eval_return_mean"]) == (best_step, best_mean)
    # The file holds that evaluation's agent: its greedy episodes on the run's evaluation envs score the same.
    best = Agent.load(tmp_path / BEST_AGENT)
    assert float(np.mean(evaluate(best, make_eval_env(best.config)))) == best_mean


class Crash(RuntimeError):
    pass


def test_a_resumed_run_keeps_the_best_of_the_steps_before_its_checkpoint(tmp_path):
    unbroken = DQN.from_env("CartPole-v1", seed=2, **SETTINGS)
    expected = Runner(unbroken, run_dir=tmp_path / "unbroken", progress=False).run()
    assert expected["best_eval_step"] < 2_000  # before the checkpoint the resume starts from

    crashed = DQN.from_env("CartPole-v1", seed=2, **SETTINGS)
    after_step = crashed.after_step

    def crash_after_2100(next_obs, step):
        if step > 2_100:
            raise Crash
        return after_step(next_obs, step)
    crashed.after_step = crash_after_2100
    with pytest.raises(Crash):
        Runner(crashed, run_dir=tmp_path / "crashed", progress=False).run()
    payload = load_checkpoint(tmp_path / "crashed" / CHECKPOINT, AGENT_FORMAT)
    assert payload["runner"]["step"] == 2_000 and payload["runner"]["best"][0]["step"] <= 2_000
    summary = Runner(Agent.from_payload(payload), run_dir=tmp_path / "crashed", progress=False, resume=payload).run()

    assert (summary["best_eval_step"], summary["best_eval_return_mean"]) == (expected["best_eval_step"],
                                                                             expected["best_eval_return_mean"])
    ours = load_checkpoint(tmp_path / "crashed" / BEST_AGENT, AGENT_FORMAT)["model"]
    theirs = load_checkpoint(tmp_path / "unbroken" / BEST_AGENT, AGENT_FORMAT)["model"]
    assert all(torch.equal(ours[name], theirs[name]) for name in theirs)


@pytest.mark.parametrize("normalize_obs", [False, True])
def test_evaluate_py_plays_a_best_agent_file_with_its_observation_statistics(normalize_obs, tmp_path, capsys):
    agent = PPO.from_env("CartPole-v1", steps=1_024, num_envs=4, num_steps=64, eval_every=256, eval_episodes=3,
                         normalize_obs=normalize_obs)
    Runner(agent, run_dir=tmp_path, progress=False).run()
    best = load_checkpoint(tmp_path / BEST_AGENT, AGENT_FORMAT)
    assert ("runner" in best) == normalize_obs  # the training env's state, with its statistics
    capsys.readouterr()
    assert evaluate_script.main([str(tmp_path / BEST_AGENT), "--episodes", "3", "--json"]) == 0
    played = json.loads(capsys.readouterr().out)
    assert played["return_mean"] == pytest.approx(best["best"]["eval_return_mean"], abs=1e-9)
