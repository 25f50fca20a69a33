"""Named variants in comparison grids: parsing and its errors, settings precedence, the variant
recorded in each run, the report's columns, and a tiny 2-variant grid run end to end."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from agents.comparison.grid import Overrides, parse_overrides, plan_grid
from agents.comparison.report import write_report
from agents.comparison.runs import load_run
from agents.comparison.variants import (CATALOGUE, Variant, encoder_aux_variants, parse_variant,
                                        record_variant, variant_agents)

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))
import compare  # noqa: E402  (scripts/compare.py)

# DQN on CartPole small enough that one run takes about a second
TINY_DQN = ["eval_every=256", "eval_episodes=2", "num_envs=2", "learning_starts=128", "train_frequency=64",
            "gradient_steps=4", "batch_size=16", "log_every=128", "buffer_size=1000",
            'encoder_options={"hidden_sizes": [16]}']


# ----------------------------------------------------------------------------- parsing
def test_catalogue_names_parse_to_their_entries():
    assert parse_variant("dqn+double") == Variant("dqn+double", "dqn", {"double": True})
    assert parse_variant(" rainbow ") == Variant("rainbow", "dqn", {"preset": "rainbow"})
    assert set(CATALOGUE) == {"dqn+double", "dqn+dueling", "dqn+noisy", "dqn+prioritized", "dqn+nstep",
                              "dqn+c51", "rainbow"}


def test_defined_variants_have_typed_json_settings():
    assert parse_variant("dqn+double=dqn:double=true") == Variant("dqn+double", "dqn", {"double": True})
    assert parse_variant('rainbow=dqn:preset="rainbow"') == Variant("rainbow", "dqn", {"preset": "rainbow"})
    assert parse_variant("plain-copy=ppo") == Variant("plain-copy", "ppo", {})
    # commas inside a JSON value stay in it; 1e-3 is a float, 1e3 an int where the field is an int
    variant = parse_variant('small_net=ppo:encoder_options={"hidden_sizes": [64, 64]}, learning_rate=1,'
                            "num_steps=1e3,encoder=mlp")
    assert variant == Variant("small_net", "ppo", {"encoder_options": {"hidden_sizes": [64, 64]},
                                                   "learning_rate": 1.0, "num_steps": 1000, "encoder": "mlp"})
    assert type(variant.settings["learning_rate"]) is float and type(variant.settings["num_steps"]) is int


@pytest.mark.parametrize("text, message", [
    ("dqn+triple", "not a known variant \\(known: dqn\\+double, "),
    ("a.b=dqn:double=true", "the name must start with a letter or digit"),
    ("x/y=dqn", "the name must start with a letter or digit"),
    ("=dqn:double=true", "the name must start with a letter or digit"),
    ("ppo=dqn:double=true", "'ppo' is an agent's name"),
    ("v=nope:double=true", "unknown agent 'nope' \\(choose from a2c, "),
    ("v=dqn:doubel=true", "--variant v: unknown dqn setting 'doubel'"),
    ("v=ppo:double=true", "--variant v: unknown ppo setting 'double'"),
    ("v=dqn:seed=3", "--variant v: the grid sets 'seed'"),
    ("v=dqn:env=Pong", "--variant v: the grid sets 'env'"),
    ("v=dqn:double=1", "--variant v expects bool, got 1"),
    ("v=dqn:n_step=2.5", "--variant v expects int, got 2.5"),
    ("v=dqn:double", "expects key=value settings, got 'double'"),
    ("v=dqn:double=true,double=false", "'double' is set twice"),
])
def test_variant_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_variant(text)


def test_variant_agents_are_the_scopes_of_per_agent_sets():
    variants = [parse_variant("dqn+double"), parse_variant("fast=ppo:learning_rate=1e-3")]
    assert variant_agents(["ppo"], variants) == ["ppo", "dqn"]
    assert variant_agents([], variants[:1]) == ["dqn"]


def test_encoder_aux_grid_names_cells_and_settings():
    variants, cells = encoder_aux_variants("dqn", "nature,impala", ["none", "curl+dbc"])
    assert variants == [Variant("nature+none", "dqn", {"encoder": "nature", "aux": "none"}),
                        Variant("nature+curl+dbc", "dqn", {"encoder": "nature", "aux": "curl,dbc"}),
                        Variant("impala+none", "dqn", {"encoder": "impala", "aux": "none"}),
                        Variant("impala+curl+dbc", "dqn", {"encoder": "impala", "aux": "curl,dbc"})]
    assert cells == [{"variant": "nature+none", "levels": ["nature", "none"]},
                     {"variant": "nature+curl+dbc", "levels": ["nature", "curl+dbc"]},
                     {"variant": "impala+none", "levels": ["impala", "none"]},
                     {"variant": "impala+curl+dbc", "levels": ["impala", "curl+dbc"]}]
    for encoders, aux, message in (("natur", "none", "unknown encoder 'natur'"),
                                   ("mlp", "curl,simclr", "simclr"),
                                   ("mlp", "none+curl", "cannot be combined"),
                                   ("mlp,mlp", "none", "encoders listed twice: mlp"),
                                   ("", "none", "no encoders given")):
        with pytest.raises(ValueError, match=message):
            encoder_aux_variants("dqn", encoders, aux)


# ----------------------------------------------------------------------------- planning
def test_variant_settings_win_over_every_set_and_name_the_run_folders(tmp_path):
    overrides = parse_overrides(["steps=1000", "double=false", "dqn.batch_size=16", "dqn.n_step=2"], ["dqn"])
    variants = [parse_variant("dqn+double"), parse_variant("big=dqn:batch_size=128")]
    plan = plan_grid(["dqn"], ["CartPole-v1"], [0], overrides, tmp_path / "runs", variants=variants)
    by_name = {task.name: task for task in plan.tasks}
    assert [Path(task.run_dir).name for task in plan.tasks] == [
        "CartPole-v1__dqn__seed0", "CartPole-v1__dqn+double__seed0", "CartPole-v1__big__seed0"]
    assert [(task.agent, task.variant) for task in plan.tasks] == [("dqn", None), ("dqn", "dqn+double"),
                                                                   ("dqn", "big")]
    settings = {name: task.settings for name, task in by_name.items()}
    assert [settings[name]["double"] for name in ("dqn", "dqn+double", "big")] == [False, True, False]
    assert [settings[name]["batch_size"] for name in ("dqn", "dqn+double", "big")] == [16, 16, 128]
    assert {settings[name]["n_step"] for name in settings} == {2}
    assert by_name["dqn+double"].label == "dqn+double CartPole-v1 seed 0"


def test_a_name_given_twice_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="agents or variants listed twice: dqn\\+double"):
        plan_grid([], ["CartPole-v1"], [0], Overrides(), tmp_path,
                  variants=[parse_variant("dqn+double"), parse_variant("dqn+double=dqn:double=true")])


def test_a_variant_run_is_finished_once_its_config_records_the_variant(tmp_path):
    run_dir = tmp_path / "runs" / "CartPole-v1__dqn+double__seed0"
    run_dir.mkdir(parents=True)
    (run_dir / "summary.json").write_text('{"steps": 1000}')
    (run_dir / "config.json").write_text(json.dumps({"agent": "dqn", "lr": 0.5}, indent=2) + "\n")
    grid = [[], ["CartPole-v1"], [0], parse_overrides(["steps=1000"], ["dqn"]), tmp_path / "runs"]
    plan = plan_grid(*grid, variants=[parse_variant("dqn+double")])
    assert (len(plan.tasks), len(plan.finished)) == (1, 0)  # stopped before the name was recorded
    record_variant(run_dir, "dqn+double")
    assert json.loads((run_dir / "config.json").read_text()) == {"agent": "dqn", "lr": 0.5, "variant": "dqn+double"}
    assert sorted(path.name for path in run_dir.iterdir()) == ["config.json", "summary.json"]
    plan = plan_grid(*grid, variants=[parse_variant("dqn+double")])
    assert (len(plan.tasks), len(plan.finished)) == (0, 1)


# ----------------------------------------------------------------------------- report
def test_loader_prefers_the_variant_and_factor_rows_follow_the_cells(write_run, tmp_path):
    write_run("dqn", "CartPole-v1", 0, [100, 200], [5.0, 7.0]).rename(tmp_path / "runs" / "plain")
    for seed, final in enumerate((10.0, 20.0, 30.0)):
        run_dir = write_run("dqn", "CartPole-v1", seed, [100, 200], [5.0, final])
        config = json.loads((run_dir / "config.json").read_text())
        (run_dir / "config.json").write_text(json.dumps({**config, "variant": "mlp+curl"}))
    assert load_run(tmp_path / "runs" / "dqn_CartPole-v1_0").agent == "mlp+curl"
    assert load_run(tmp_path / "runs" / "plain").agent == "dqn"

    factors = {"names": ["encoder", "aux"], "cells": [{"variant": "mlp+none", "levels": ["mlp", "none"]},
                                                      {"variant": "mlp+curl", "levels": ["mlp", "curl"]}]}
    summary = write_report(tmp_path / "runs", tmp_path / "out", reps=200, factors=factors)
    assert summary["agents"] == ["dqn", "mlp+curl"] and summary["factors"] == factors
    interval = summary["per_env"]["CartPole-v1"]["mlp+curl"]["final_return_mean_ci"]
    assert interval["point"] == pytest.approx(20.0)
    assert 10.0 <= interval["low"] < 20.0 < interval["high"] <= 30.0
    assert summary["per_env"]["CartPole-v1"]["dqn"]["final_return_mean_ci"] == {"point": 7.0, "low": 7.0,
                                                                               "high": 7.0}
    lines = (tmp_path / "out" / "summary.md").read_text().splitlines()
    table = lines[lines.index("## encoder x aux") + 4:]
    assert table[0] == "| env | encoder | aux | seeds | final return mean [95% CI] | steps | wall time (s) |"
    assert table[2] == "| CartPole-v1 | mlp | none | 0 | not run | — | — |"
    assert table[3] == (f"| CartPole-v1 | mlp | curl | 3 | 20.00 [{interval['low']:.2f}, {interval['high']:.2f}]"
                        " | 200 | 12.0 |")
    assert table[4] == ""
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["factors"] == factors


# ----------------------------------------------------------------------------- command line
@pytest.mark.parametrize("extra, message", [
    (["--variant", "dqn+triple"], "not a known variant"),
    (["--variant", "v=dqn:doubel=true"], "unknown dqn setting 'doubel'"),
    (["--agents", "dqn", "--variant", "dqn=dqn:double=true"], "'dqn' is an agent's name"),
    (["--variant", "dqn+double", "--variant", "dqn+double"], "listed twice: dqn+double"),
    (["--variant", "dqn+double", "--set", "ppo.learning_rate=1"], "'ppo' is not an agent of this grid"),
    ([], "--agents or --variant is required"),
])
def test_cli_variant_errors_exit_2_before_anything_runs(tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        compare.main(["--envs", "CartPole-v1", "--out", str(out), *extra])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.slow
def test_two_variant_grid_runs_per_variant_and_its_report_rebuilds_identically(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--variant", "dqn+double", "--variant", 'dqn-mse=dqn:loss="mse",double=false',
            "--envs", "CartPole-v1", "--seeds", "2", "--steps", "512", "--out", str(out), "--workers", "2",
            "--no-progress", "--set", "dqn.end_e=0.5", *[item for s in TINY_DQN for item in ("--set", s)]]
    assert compare.main(argv) == 0
    printed = capsys.readouterr().out
    assert "4 runs: 0 finished (skipped), 0 to resume, 4 new" in printed
    for name in ("dqn+double", "dqn-mse"):
        for seed in (0, 1):
            assert f"{name} CartPole-v1 seed {seed}: eval return" in printed
            config = json.loads((out / "runs" / f"CartPole-v1__{name}__seed{seed}" / "config.json").read_text())
            assert (config["agent"], config["variant"], config["seed"]) == ("dqn", name, seed)
            expected = (True, "huber") if name == "dqn+double" else (False, "mse")
            assert (config["double"], config["loss"], config["end_e"]) == (*expected, 0.5)
    first = {name: (out / name).read_bytes() for name in ("summary.json", "summary.md")}
    summary = json.loads(first["summary.json"])
    assert summary["agents"] == ["dqn+double", "dqn-mse"]
    rows = summary["per_env"]["CartPole-v1"]
    assert {name: rows[name]["seeds"] for name in rows} == {"dqn+double": [0, 1], "dqn-mse": [0, 1]}
    returns = {name: [json.loads((out / "runs" / f"CartPole-v1__{name}__seed{seed}" / "summary.json").read_text())
                      ["eval_return_mean"] for seed in (0, 1)] for name in rows}
    assert {name: rows[name]["final_return_mean"] for name in rows} == pytest.approx(
        {name: float(np.mean(values)) for name, values in returns.items()})
    md = first["summary.md"].decode()
    assert "| CartPole-v1 | dqn+double | 2 |" in md and "| CartPole-v1 | dqn-mse | 2 |" in md

    assert compare.main(["--report", str(out)]) == 0
    assert {name: (out / name).read_bytes() for name in ("summary.json", "summary.md")} == first
    assert compare.main(argv) == 0
    assert "4 runs: 4 finished (skipped), 0 to resume, 0 new" in capsys.readouterr().out
    assert {name: (out / name).read_bytes() for name in ("summary.json", "summary.md")} == first
