"""``best_agent.pt``: the agent of a run's best evaluation, as SB3's EvalCallback keeps it."""
import json
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents import DQN, PPO
from agents.base import AGENT_FORMAT, NORMALIZATION, Agent
from agents.checkpoint import load_checkpoint
from agents.evaluation import evaluate, make_eval_env
from agents.runner import BEST_AGENT, Runner
from crashing import Crash, crash_after, crash_and_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import evaluate as evaluate_script  # noqa: E402  (scripts/evaluate.py)
import train  # noqa: E402  (scripts/train.py)

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


def test_a_resumed_run_keeps_the_best_of_the_steps_before_its_checkpoint(tmp_path):
    unbroken = DQN.from_env("CartPole-v1", seed=2, **SETTINGS)
    expected = Runner(unbroken, run_dir=tmp_path / "unbroken", progress=False).run()
    assert expected["best_eval_step"] < 2_000  # before the checkpoint the resume starts from

    payload = crash_and_checkpoint(DQN.from_env("CartPole-v1", seed=2, **SETTINGS), 2_100, tmp_path / "crashed")
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
    assert ("observation" in best.get(NORMALIZATION, {})) == normalize_obs
    capsys.readouterr()
    assert evaluate_script.main([str(tmp_path / BEST_AGENT), "--episodes", "3", "--json"]) == 0
    played = json.loads(capsys.readouterr().out)
    assert played["return_mean"] == pytest.approx(best["best"]["eval_return_mean"], abs=1e-9)


def test_a_resume_that_evaluates_otherwise_keeps_a_better_agent_saved_after_the_checkpoint(tmp_path):
    """Evaluations after the last checkpoint, lost in a crash, may not come again (Atari's fresh
    episodes, other evaluation settings): the best agent they saved stays."""
    unbroken = Runner(DQN.from_env("CartPole-v1", seed=2, **SETTINGS), run_dir=tmp_path / "unbroken",
                      progress=False).run()
    best_step = unbroken["best_eval_step"]
    assert best_step % 1_000  # an evaluation after a checkpoint
    payload = crash_and_checkpoint(DQN.from_env("CartPole-v1", seed=2, **SETTINGS), best_step, tmp_path / "crashed")
    assert payload["runner"]["step"] < best_step
    resumed = Agent.from_payload(payload)
    resumed.config.eval_every = 0  # a setting a resume may change: no evaluation until the end
    summary = Runner(resumed, run_dir=tmp_path / "crashed", progress=False, resume=payload).run()
    assert (summary["best_eval_step"], summary["best_eval_return_mean"]) == (best_step,
                                                                             unbroken["best_eval_return_mean"])
    assert load_checkpoint(tmp_path / "crashed" / BEST_AGENT, AGENT_FORMAT)["best"]["step"] == best_step


def test_a_new_run_drops_the_best_agent_of_a_run_that_left_no_checkpoint(tmp_path):
    Runner(DQN.from_env("CartPole-v1", **dict(SETTINGS, steps=600)), run_dir=tmp_path / "old", progress=False).run()
    (tmp_path / "new").mkdir()
    (tmp_path / "old" / BEST_AGENT).rename(tmp_path / "new" / BEST_AGENT)  # as a run dead before its checkpoint leaves it
    agent = DQN.from_env("CartPole-v1", **SETTINGS)
    crash_after(agent, 100)  # before its first evaluation
    with pytest.raises(Crash):
        Runner(agent, run_dir=tmp_path / "new", progress=False).run()
    assert not (tmp_path / "new" / BEST_AGENT).exists()


class _NanReward(gym.Env):
    """Five steps of NaN reward: a run whose evaluations are not finite, as a diverged one's."""
    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, render_mode=None):
        self.render_mode, self.t = render_mode, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.zeros(2, np.float32), float("nan"), self.t >= 5, False, {}


gym.register("reprl-test/NanReward-v0", entry_point=_NanReward)


@pytest.mark.filterwarnings("ignore:.*The reward is a NaN value")
def test_a_run_without_a_finite_evaluation_has_no_best_agent(tmp_path):
    agent = PPO.from_env("reprl-test/NanReward-v0", steps=64, num_envs=2, num_steps=16, eval_every=0,
                         eval_episodes=1)
    summary = Runner(agent, run_dir=tmp_path, progress=False).run()
    assert np.isnan(summary["eval_return_mean"])
    assert summary["best_eval_return_mean"] is None and summary["best_eval_step"] is None
    assert not (tmp_path / BEST_AGENT).exists() and (tmp_path / "summary.json").is_file()


def test_train_py_names_the_best_evaluation_when_the_final_one_falls_short_of_it(tmp_path, capsys):
    flags = [f"--{name.replace('_', '-')}={value}" for name, value in SETTINGS.items()]
    assert train.main(["--agent", "dqn", "--seed", "2", *flags, "--no-progress", "--run-dir", str(tmp_path / "a")]) == 0
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["eval_return_mean"] < summary["best_eval_return_mean"]
    assert capsys.readouterr().out.splitlines()[-1].endswith(
        f"; best evaluation {summary['best_eval_return_mean']:.1f} at step {summary['best_eval_step']}, "
        f"its agent in best_agent.pt")
    # the final evaluation the only one, so the best: nothing to add
    assert train.main(["--agent", "dqn", "--seed", "2", *flags, "--steps", "300", "--no-progress",
                       "--run-dir", str(tmp_path / "b")]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(str(tmp_path / "b"))
