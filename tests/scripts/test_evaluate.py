"""scripts/evaluate.py replays a run's own evaluation from what the run saved, and refuses what it cannot play."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from agents import DQN, PPO
from agents.base import NORMALIZATION
from agents.evaluation import evaluate as play, make_eval_env

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import evaluate  # noqa: E402
import train  # noqa: E402


def evaluated(argv: list[str], capsys) -> dict:
    assert evaluate.main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def refused(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_a_run_folder_replays_the_final_evaluation_with_the_runs_observation_statistics(tmp_path, capsys):
    run_dir = tmp_path / "run"
    agent = PPO.from_env("CartPole-v1", steps=2048, num_envs=4, num_steps=64, eval_every=0, eval_episodes=4,
                         normalize_obs=True, normalize_reward=True)
    agent.learn(run_dir=run_dir, progress=False)
    summary = json.loads((run_dir / "summary.json").read_text())
    result = evaluated([str(run_dir), "--episodes", "4"], capsys)
    assert result["returns"] == summary["eval_returns"]
    assert result["return_mean"] == pytest.approx(summary["eval_return_mean"])
    assert result["path"] == str(run_dir / "checkpoint.pt") and result["seed"] == 1
    # The statistics matter: the same agent on raw observations plays other episodes.
    raw = play(agent, make_eval_env(agent.config))
    assert raw.tolist() != summary["eval_returns"]
    # The agent holds its statistics, and agent.save keeps them ...
    agent.save(tmp_path / "agent.pt")
    assert evaluated([str(tmp_path / "agent.pt"), "--episodes", "4"], capsys)["returns"] == summary["eval_returns"]
    # ... which an agent saved before any training has not.
    PPO.from_env("CartPole-v1", normalize_obs=True).save(tmp_path / "untrained.pt")
    assert "whose statistics its file does not hold" in refused([str(tmp_path / "untrained.pt")], capsys)
    # A checkpoint written before agents held statistics: they come from its training env's state.
    payload = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    del payload[NORMALIZATION]
    torch.save(payload, tmp_path / "older.pt")
    assert evaluated([str(tmp_path / "older.pt"), "--episodes", "4"], capsys)["returns"] == summary["eval_returns"]


def test_an_agent_file_plays_as_its_run_folder_and_seeds_pick_the_episodes(tmp_path, capsys):
    run_dir = tmp_path / "run"
    agent = PPO.from_env("CartPole-v1", steps=2048, num_envs=4, num_steps=64, eval_every=0)
    agent.learn(run_dir=run_dir, progress=False)
    agent.save(tmp_path / "agent.pt")
    from_folder = evaluated([str(run_dir), "--seed", "5", "--episodes", "6"], capsys)
    from_file = evaluated([str(tmp_path / "agent.pt"), "--seed", "5", "--episodes", "6"], capsys)
    assert from_file["returns"] == from_folder["returns"] and len(from_file["returns"]) == 6
    assert from_file["episode_seed"] == 5 and from_file["seed"] == 1
    other_seed = evaluated([str(tmp_path / "agent.pt"), "--seed", "6", "--episodes", "6"], capsys)
    assert other_seed["returns"] != from_file["returns"]


def test_multi_seed_runs_are_played_seed_by_seed_and_torch_envs_are_filmed(tmp_path, capsys):
    run_dir = tmp_path / "multi"
    assert train.main(["--backend", "torch", "--num-seeds", "2", "--steps", "1024", "--num-envs", "4",
                       "--num-steps", "64", "--eval-every", "0", "--eval-episodes", "3", "--run-dir", str(run_dir),
                       "--no-progress"]) == 0
    capsys.readouterr()
    assert evaluate.main([str(run_dir), "--episodes", "3", "--json"]) == 0
    both = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [result["seed"] for result in both] == [1, 2]
    for result in both:
        summary = json.loads((run_dir / f"seed_{result['seed']}" / "summary.json").read_text())
        assert result["returns"] == summary["eval_returns"]
    seed_dir = run_dir / "seed_2"
    assert evaluated([str(seed_dir), "--episodes", "3"], capsys)["returns"] == both[1]["returns"]
    gif = tmp_path / "seed_2.gif"
    assert evaluate.main([str(seed_dir), "--episodes", "1", "--video", str(gif)]) == 0
    assert f"first episode saved to {gif}" in capsys.readouterr().out
    frames = Image.open(gif)
    assert frames.size == (600, 400) and frames.n_frames >= 5


def test_each_seed_of_a_normalised_multi_seed_run_plays_with_its_own_observation_statistics(tmp_path, capsys):
    """A multi-seed run keeps observation statistics per seed, which its checkpoint, each seed's
    agent.pt and best_agent.pt carry; another seed's statistics play other episodes."""
    run_dir = tmp_path / "multi"
    assert train.main(["--backend", "torch", "--num-seeds", "2", "--steps", "2048", "--num-envs", "4",
                       "--num-steps", "64", "--normalize-obs", "true", "--normalize-reward", "true", "--eval-every",
                       "0", "--eval-episodes", "4", "--run-dir", str(run_dir), "--no-progress"]) == 0
    capsys.readouterr()
    assert evaluate.main([str(run_dir), "--episodes", "4", "--json"]) == 0
    both = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [result["seed"] for result in both] == [1, 2]
    for result in both:
        seed_dir = run_dir / f"seed_{result['seed']}"
        summary = json.loads((seed_dir / "summary.json").read_text())
        assert result["returns"] == summary["eval_returns"]
        for name in ("agent.pt", "best_agent.pt"):
            assert evaluated([str(seed_dir / name), "--episodes", "4"], capsys)["returns"] == summary["eval_returns"]
    first, second = (torch.load(run_dir / f"seed_{seed}" / "agent.pt", weights_only=True) for seed in (1, 2))
    second[NORMALIZATION]["observation"] = first[NORMALIZATION]["observation"]
    torch.save(second, tmp_path / "swapped.pt")
    assert evaluated([str(tmp_path / "swapped.pt"), "--episodes", "4"], capsys)["returns"] != both[1]["returns"]


def test_atari_episodes_are_filmed_from_the_observations(tmp_path, capsys):
    """ale-py draws nothing itself: the GIF holds the newest 84x84 frame of each observation."""
    DQN.from_env("Pong", num_envs=1).save(tmp_path / "agent.pt")
    gif = tmp_path / "pong.gif"
    assert evaluate.main([str(tmp_path / "agent.pt"), "--episodes", "1", "--max-steps", "40", "--video", str(gif)]) == 0
    assert "first episode saved" in capsys.readouterr().out
    frames = Image.open(gif)
    assert frames.size == (84, 84) and frames.n_frames > 1


@pytest.mark.parametrize("case", ["missing", "empty folder", "not a reprl file", "no episodes", "absent device",
                                  "video under a file", "video not a gif"])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, case):
    (tmp_path / "notes.txt").write_text("hello")
    argv, message = {"missing": ([str(tmp_path / "nowhere")], "does not exist"),
                     "empty folder": ([str(tmp_path)], "holds neither checkpoint.pt nor agent.pt"),
                     "not a reprl file": ([str(tmp_path / "notes.txt")], "corrupt or not a reprl file"),
                     "no episodes": ([str(tmp_path), "--episodes", "0"], "--episodes and --max-steps must be >= 1"),
                     "absent device": ([str(tmp_path / "agent.pt"), "--device", "cuda:64"], "device 'cuda:64'"),
                     "video under a file": ([str(tmp_path / "agent.pt"), "--video", str(tmp_path / "notes.txt" / "a.gif")],
                                            f"'{tmp_path / 'notes.txt'}' is a file"),
                     "video not a gif": ([str(tmp_path), "--video", str(tmp_path / "a.mp4")], "name it FILE.gif")}[case]
    if case in ("absent device", "video under a file"):
        PPO.from_env("CartPole-v1").save(tmp_path / "agent.pt")
    assert message in refused(argv, capsys)


@pytest.mark.parametrize("seed", ["-1", "-20000", "2147483648"])
def test_seeds_train_would_refuse_are_refused(tmp_path, capsys, seed):
    assert refused([str(tmp_path), "--seed", seed], capsys) == f"error: --seed must be in [0, 2147483647], got {seed}"


def test_an_env_that_draws_no_frames_cannot_be_filmed(tmp_path, capsys):
    PPO.from_env("reprl/GraphNav-v0", encoder="mlp").save(tmp_path / "agent.pt")  # GraphNav renders text only
    gif = tmp_path / "graph.gif"
    assert refused([str(tmp_path / "agent.pt"), "--episodes", "1", "--video", str(gif)], capsys) == (
        f"error: --video {gif}: reprl/GraphNav-v0 cannot be filmed (render_mode must be None or 'ansi', "
        f"got 'rgb_array')")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["agent.pt"]


def test_a_gif_the_disk_refuses_is_one_line_and_leaves_no_partial_file(tmp_path, capsys, monkeypatch):
    def disk_full(frames, path, fps=30):
        path.write_bytes(b"GIF89a")  # what a writer had written when the disk filled up
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("agents.evaluation.save_gif", disk_full)
    PPO.from_env("CartPole-v1").save(tmp_path / "agent.pt")
    gif = tmp_path / "cartpole.gif"
    assert refused([str(tmp_path / "agent.pt"), "--episodes", "1", "--video", str(gif)], capsys) == (
        f"error: --video {gif}: cannot write the GIF (No space left on device)")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["agent.pt"]
