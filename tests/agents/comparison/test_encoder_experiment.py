"""scripts/encoder_experiment.py: bad input exits 2 before anything runs; a tiny encoder x aux
grid on CartPole writes one table row per cell, summary.json, curves.png, and a re-run skips it."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))
import encoder_experiment  # noqa: E402  (scripts/encoder_experiment.py)

TINY_DQN = ["eval_every=512", "eval_episodes=2", "num_envs=2", "learning_starts=256", "train_frequency=64",
            "gradient_steps=4", "batch_size=16", "log_every=256", "buffer_size=2000",
            'encoder_options={"hidden_sizes": [16]}']


@pytest.mark.parametrize("extra, message", [
    (["--encoders", "natur"], "unknown encoder 'natur' (choose from "),
    (["--aux", "none,foo"], "unknown auxiliary objective 'foo'"),
    (["--aux", "none,none"], "aux objectives listed twice: none"),
    (["--set", "aux=curl"], "--set aux: the experiment sets 'aux' (use --aux)"),
    (["--set", "dqn.encoder=mlp"], "--set encoder: the experiment sets 'encoder' (use --encoders)"),
    (["--set", "num_step=3"], "unknown dqn setting 'num_step'"),
    (["--encoders", "nature,impala"], "no cell of the grid can run on CartPole-v1: the nature encoder needs"),
    (["--seeds", "0"], "number of seeds must be at least 1"),
    (["--workers", "0"], "--workers must be at least 1"),
    (["--agent", "nope"], "unknown agent 'nope'"),
    (["--encoders", "mlp,missing/encoder.pt"], "or give an encoder file as NAME=PATH or PATH"),
    (["--encoders", "byol=missing.pt"], "'missing.pt' does not exist"),
    (["--set", "freeze_encoder=false"], "--set freeze_encoder: the experiment sets 'freeze_encoder' (use --fine-tune)"),
])
def test_bad_input_exits_2_with_one_line_before_anything_runs(tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        encoder_experiment.main(["--agent", "dqn", "--env", "CartPole-v1", "--encoders", "mlp", "--aux", "none",
                                 "--out", str(out), *extra])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1
    assert not out.exists()


def write_encoder_file(path: Path) -> Path:
    import gymnasium as gym

    from representation.encoders import make_encoder, save_encoder

    path.parent.mkdir(parents=True)
    save_encoder(make_encoder("mlp", gym.spaces.Box(-1, 1, (4,)), hidden_sizes=[8]), "mlp", {"hidden_sizes": [8]},
                 path)
    return path


@pytest.mark.parametrize("fine_tune", [False, True])
def test_pretrained_encoder_files_are_levels_of_the_grid(tmp_path, fine_tune):
    from agents.comparison.variants import encoder_aux_variants

    byol, vae = (write_encoder_file(tmp_path / name / "encoder.pt") for name in ("pong_byol", "pong_vae"))
    variants, cells = encoder_aux_variants("dqn", f"mlp,byol={byol},{vae}", "none", fine_tune)
    assert [cell["levels"] for cell in cells] == [["mlp", "none"], ["byol", "none"], ["pong_vae", "none"]]
    assert variants[0].settings == {"encoder": "mlp", "aux": "none"}
    for variant, path in zip(variants[1:], (byol, vae)):
        assert variant.settings == {"encoder_checkpoint": str(path.resolve()), "freeze_encoder": not fine_tune,
                                    "aux": "none"}
    with pytest.raises(ValueError, match="not a registered encoder's"):
        encoder_aux_variants("dqn", f"nature={byol}", "none")


@pytest.mark.slow
def test_tiny_grid_end_to_end_and_rerun_skips_it(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--agent", "dqn", "--env", "CartPole-v1", "--encoders", "mlp", "--aux", "none,deepmdp", "--seeds", "2",
            "--steps", "1024", "--out", str(out), "--workers", "2", "--no-progress",
            *[item for s in TINY_DQN for item in ("--set", s)]]
    assert encoder_experiment.main(argv) == 0
    assert "4 runs: 0 finished (skipped), 0 to resume, 4 new" in capsys.readouterr().out

    finals = {}
    for aux in ("none", "deepmdp"):
        finals[aux] = []
        for seed in (0, 1):
            run_dir = out / "runs" / f"CartPole-v1__mlp+{aux}__seed{seed}"
            config = json.loads((run_dir / "config.json").read_text())
            identity = (config["variant"], config["encoder"], config["aux"], config["seed"])
            assert identity == (f"mlp+{aux}", "mlp", aux, seed)
            finals[aux].append(json.loads((run_dir / "summary.json").read_text())["eval_return_mean"])
        metrics = (out / "runs" / f"CartPole-v1__mlp+{aux}__seed0" / "metrics.jsonl").read_text()
        assert ("aux/deepmdp" in metrics) == (aux == "deepmdp")  # the objective really trained

    summary = json.loads((out / "summary.json").read_text())
    assert summary["agents"] == ["mlp+deepmdp", "mlp+none"]
    assert summary["factors"] == {"names": ["encoder", "aux"],
                                  "cells": [{"variant": "mlp+none", "levels": ["mlp", "none"]},
                                            {"variant": "mlp+deepmdp", "levels": ["mlp", "deepmdp"]}]}
    rows = summary["per_env"]["CartPole-v1"]
    for aux, values in finals.items():
        row = rows[f"mlp+{aux}"]
        assert row["seeds"] == [0, 1] and row["steps_mean"] == 1024
        interval = row["final_return_mean_ci"]
        assert interval["point"] == pytest.approx(np.mean(values))
        assert min(values) <= interval["low"] <= interval["high"] <= max(values)

    lines = (out / "summary.md").read_text().splitlines()
    table = lines[lines.index("## encoder x aux") + 4:]
    assert table[0].startswith("| env | encoder | aux | seeds | final return mean [95% CI] | steps |")
    for row, aux in zip(table[2:4], ("none", "deepmdp")):
        interval = rows[f"mlp+{aux}"]["final_return_mean_ci"]
        assert row.startswith(f"| CartPole-v1 | mlp | {aux} | 2 | {np.mean(finals[aux]):.2f} "
                              f"[{interval['low']:.2f}, {interval['high']:.2f}] | 1,024 | ")
    assert table[4] == ""  # one row per aux, nothing more
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    first = (out / "summary.json").read_bytes()
    assert encoder_experiment.main(argv) == 0
    assert "4 runs: 4 finished (skipped), 0 to resume, 0 new" in capsys.readouterr().out
    assert (out / "summary.json").read_bytes() == first


def test_a_cell_of_a_pretrained_encoder_trains_the_agent_on_it_frozen(tmp_path):
    import torch

    from agents.base import Agent
    from representation.encoders import read_encoder_file

    path = write_encoder_file(tmp_path / "pong_byol" / "encoder.pt")
    out = tmp_path / "out"
    assert encoder_experiment.main(["--agent", "dqn", "--env", "CartPole-v1", "--encoders", str(path), "--aux", "none",
                                    "--seeds", "1", "--steps", "512", "--out", str(out), "--workers", "1",
                                    "--no-progress", *[item for s in TINY_DQN[:-1] for item in ("--set", s)]]) == 0
    run_dir = out / "runs" / "CartPole-v1__pong_byol+none__seed0"
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["variant"], config["encoder"], config["freeze_encoder"]) == ("pong_byol+none", "mlp", True)
    trained, saved = Agent.load(run_dir / "checkpoint.pt").q.encoder.state_dict(), read_encoder_file(path)["state_dict"]
    assert trained.keys() == saved.keys() and all(torch.equal(trained[k], saved[k]) for k in saved)
