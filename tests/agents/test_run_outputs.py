"""What a run leaves on disk: config, metrics, TensorBoard events, checkpoint, summary, videos."""
import json
import sys
from pathlib import Path

import pytest
from PIL import Image

from agents import DQN, PPO


def test_a_run_directory_holds_everything_a_person_looks_at(tmp_path):
    run_dir = tmp_path / "run"
    PPO.from_env("CartPole-v1", steps=1024, num_envs=4, num_steps=64, eval_every=512, eval_episodes=2,
                 log_every=256, capture_video=True).learn(run_dir=run_dir, progress=False)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["agent"] == "ppo" and config["num_steps"] == 64 and config["encoder"] == "mlp"
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines if "charts/sps" in line] == [256, 512, 768, 1024]
    trained = [line for line in lines if "losses/policy_loss" in line]
    assert trained and {"losses/value_loss", "losses/entropy", "losses/approx_kl"} <= set(trained[0])
    assert any("charts/episodic_return" in line for line in lines)
    assert [line["step"] for line in lines if "eval/return_mean" in line] == [512, 1024]  # the final one once
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in ("env", "agent", "seed", "steps", "eval_return_mean", "eval_return_std", "wall_time_s", "sps"):
        assert key in summary
    assert summary["steps"] == 1024 and len(summary["eval_returns"]) == 2
    assert list(run_dir.glob("events.out.tfevents.*")) and (run_dir / "checkpoint.pt").is_file()
    gif = Image.open(run_dir / "videos" / "eval_step_1024.gif")
    assert gif.n_frames >= 8 and gif.size == (600, 400)


def test_without_a_progress_bar_each_evaluation_is_a_line(tmp_path, capsys):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    import train

    assert train.main(["--steps", "1024", "--num-envs", "4", "--num-steps", "64", "--eval-every", "512",
                       "--eval-episodes", "2", "--log-every", "256", "--run-dir", str(tmp_path / "run"),
                       "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    evaluations = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
                   if "eval/return_mean" in line]
    for line, logged in zip(lines, evaluations):
        assert line.startswith(f"run step {logged['step']}: eval return {logged['eval/return_mean']:.1f} ± "
                               f"{logged['eval/return_std']:.1f}, training return ")
        assert line.endswith(" steps/s")
    assert len(lines) == 3 and lines[2].startswith("ppo on CartPole-v1 (seed 1): eval return")


def test_dqn_checkpoint_can_leave_the_replay_buffer_out(tmp_path):
    import torch

    for keep in (True, False):
        agent = DQN.from_env("CartPole-v1", steps=600, learning_starts=200, eval_every=0, eval_episodes=1,
                             checkpoint_replay=keep)
        agent.learn(run_dir=tmp_path / str(keep), progress=False)
        payload = torch.load(tmp_path / str(keep) / "checkpoint.pt", weights_only=True)
        assert ("buffer" in payload["training"]) is keep


def test_learn_refuses_a_folder_holding_a_run_and_default_folders_never_collide(tmp_path, monkeypatch):
    settings = dict(steps=256, num_envs=4, num_steps=64, eval_every=0, eval_episodes=1)
    PPO.from_env("CartPole-v1", **settings).learn(run_dir=tmp_path / "run", progress=False)
    before = (tmp_path / "run" / "summary.json").read_text()
    with pytest.raises(ValueError, match="already holds a run"):
        PPO.from_env("CartPole-v1", **settings, seed=5).learn(run_dir=tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "summary.json").read_text() == before

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("agents.runner.time.time", lambda: 1_700_000_000.0)  # both runs in the same second
    for _ in range(2):
        PPO.from_env("CartPole-v1", **settings).learn(progress=False)
    folders = sorted(path.name for path in (tmp_path / "runs").iterdir())
    assert folders == ["CartPole-v1__ppo__1__1700000000", "CartPole-v1__ppo__1__1700000000_2"]
