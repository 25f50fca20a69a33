"""The report on fake run folders: known numbers, byte-identical rebuilds, non-empty plots."""
from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from agents.comparison.markdown import render_markdown
from agents.comparison.plots import plot_aggregate
from agents.comparison.report import compare, write_report
from agents.comparison.runs import load_runs

GOOD = {"CartPole-v1": [500.0, 400.0, 450.0], "MyGrid-v0": [8.0, 10.0, 9.0]}
BAD = {"CartPole-v1": [100.0, 200.0, 150.0], "MyGrid-v0": [2.0, 4.0, 3.0]}


@pytest.fixture
def runs_dir(write_run, tmp_path):
    for agent, finals in (("good", GOOD), ("bad", BAD)):
        for env, returns in finals.items():
            for seed, final in enumerate(returns):
                write_run(agent, env, seed, [0, 50, 100], [0.0, final / 4, final])
    return tmp_path / "runs"


def test_a_report_of_runs_evaluated_once_draws_each_agent_as_a_point(write_run, tmp_path):
    for agent, final in (("good", 1.0), ("bad", 0.0)):
        for seed in range(2):
            write_run(agent, "Blackjack-v1", seed, [100], [final + seed / 10])
    write_report(tmp_path / "runs", tmp_path / "out", reps=50)
    assert (tmp_path / "out" / "curves.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_report_numbers_and_rebuild_is_byte_identical(runs_dir, tmp_path):
    write_report(runs_dir, tmp_path / "out", rng_seed=3, reps=200)
    listed = sorted(runs_dir.iterdir(), reverse=True)          # a list, in another order
    write_report(listed, tmp_path / "again", rng_seed=3, reps=200)
    for name in ("summary.json", "summary.md"):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()
    for name in ("curves.png", "aggregate.png"):
        data = (tmp_path / "out" / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000

    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["settings"] == {"confidence": 0.95, "metric": "eval/return_mean",
                                   "num_runs": 12, "reps": 200, "rng_seed": 3}
    assert summary["agents"] == ["bad", "good"]
    assert summary["envs"] == ["CartPole-v1", "MyGrid-v0"]
    assert summary["normalization"]["MyGrid-v0"] == {"method": "observed", "low": 2.0, "high": 10.0}

    good = summary["per_env"]["CartPole-v1"]["good"]
    assert good["seeds"] == [0, 1, 2]
    assert good["best_returns"] == [500.0, 400.0, 450.0]
    assert good["final_return_mean"] == pytest.approx(450.0)
    assert good["final_return_std"] == pytest.approx(math.sqrt(5000 / 3))   # population std
    assert good["final_return_iqm"]["point"] == pytest.approx(450.0)        # n=3: nothing cut
    # curve (0, 0) (50, f/4) (100, f): (50 * f/8 + 50 * 5f/8) / 100 = 3f/8
    assert good["auc_mean"] == pytest.approx(3 * 450.0 / 8)
    assert good["normalized_score_mean"] == pytest.approx(0.9)

    # good's normalised scores: CartPole 1, .8, .9 and MyGrid .75, 1, .875
    metrics = summary["metrics"]["good"]
    assert metrics["iqm"]["point"] == pytest.approx((0.8 + 0.875 + 0.9 + 1.0) / 4)
    assert metrics["mean"]["point"] == pytest.approx(0.8875)
    assert metrics["median"]["point"] == pytest.approx(0.8875)
    assert metrics["optimality_gap"]["point"] == pytest.approx(0.1125)
    for interval in metrics.values():
        assert interval["low"] <= interval["point"] <= interval["high"]
    assert summary["metrics"]["bad"]["mean"]["point"] == pytest.approx((0.3 + 0.125) / 2)

    # every good run beats every bad run on both envs, in every bootstrap replicate too
    assert summary["probability_of_improvement"]["good"]["bad"] == {
        "point": 1.0, "low": 1.0, "high": 1.0}
    assert summary["probability_of_improvement"]["bad"]["good"]["point"] == 0.0

    profile = summary["performance_profile"]
    assert profile["taus"][50] == pytest.approx(0.5)
    assert profile["agents"]["good"]["point"][50] == 1.0
    assert profile["agents"]["bad"]["point"][50] == 0.0

    markdown = (tmp_path / "out" / "summary.md").read_text()
    assert "| CartPole-v1 | good | 3 | 450.00 ± 40.82 |" in markdown
    assert "| good | 1.000 [1.000, 1.000] | — |" in markdown


def test_rng_seed_moves_intervals_not_points(runs_dir):
    runs = load_runs(runs_dir)
    first = compare(runs, rng=np.random.default_rng(0), reps=200)["metrics"]["good"]["iqm"]
    again = compare(runs, rng=np.random.default_rng(0), reps=200)["metrics"]["good"]["iqm"]
    other = compare(runs, rng=np.random.default_rng(1), reps=200)["metrics"]["good"]["iqm"]
    assert first == again
    assert first["point"] == other["point"]
    assert (first["low"], first["high"]) != (other["low"], other["high"])


def test_envs_not_run_by_every_agent_are_left_out_of_aggregates(runs_dir, write_run):
    write_run("good", "ALE/Pong-v5", 0, [0, 100], [-21.0, 14.6])
    summary = compare(load_runs(runs_dir), rng=np.random.default_rng(0), reps=50)
    assert summary["aggregate_envs"] == ["CartPole-v1", "MyGrid-v0"]
    assert summary["excluded_envs"] == ["ALE/Pong-v5"]
    assert summary["per_env"]["ALE/Pong-v5"]["good"]["normalized_score_mean"] == pytest.approx(1.0)
    assert summary["metrics"]["good"]["mean"]["point"] == pytest.approx(0.8875)


def test_no_shared_env_gives_per_env_tables_only(write_run, tmp_path):
    write_run("good", "CartPole-v1", 0, [0, 100], [0.0, 500.0])
    write_run("bad", "Acrobot-v1", 0, [0, 100], [-500.0, -250.0])
    summary = compare(load_runs(tmp_path / "runs"), rng=np.random.default_rng(0), reps=50)
    assert summary["aggregate_envs"] == [] and "metrics" not in summary
    assert sorted(summary["per_env"]) == ["Acrobot-v1", "CartPole-v1"]
    assert "No environment was run by every agent" in render_markdown(summary)
    plot_aggregate(summary, tmp_path / "aggregate.png")
    assert (tmp_path / "aggregate.png").stat().st_size > 0


def test_one_agent_one_env_one_seed(write_run, tmp_path):
    write_run("solo", "CartPole-v1", 0, [0, 100], [0.0, 250.0])
    summary = write_report(tmp_path / "runs", tmp_path / "out", reps=50)
    assert summary["probability_of_improvement"] == {"solo": {}}
    assert summary["metrics"]["solo"]["iqm"] == {"point": 0.5, "low": 0.5, "high": 0.5}
    assert summary["per_env"]["CartPole-v1"]["solo"]["final_return_std"] == 0.0
    assert (tmp_path / "out" / "aggregate.png").stat().st_size > 0


def test_the_best_evaluation_of_each_seed_is_reported_beside_the_final_one(write_run, tmp_path):
    write_run("dqn", "CartPole-v1", 0, [0, 50, 100], [10.0, 480.0, 130.0])   # reached 480, ended at 130
    write_run("dqn", "CartPole-v1", 1, [0, 50, 100], [12.0, 90.0, 500.0])
    summary = write_report(tmp_path / "runs", tmp_path / "out", reps=50)
    row = summary["per_env"]["CartPole-v1"]["dqn"]
    assert row["best_returns"] == [480.0, 500.0] and row["final_return_mean"] == pytest.approx(315.0)
    assert "| 480.0 / 500.0 | 100 | " in (tmp_path / "out" / "summary.md").read_text()  # then steps, wall time


def _leave_unfinished(run_dir, error_log=None, checkpoint=False):
    """Turns a written run into one that never finished: no summary.json, maybe an error.log
    or a checkpoint.pt."""
    (run_dir / "summary.json").unlink()
    if error_log is not None:
        (run_dir / "error.log").write_text(error_log)
    if checkpoint:
        (run_dir / "checkpoint.pt").write_bytes(b"not read")


def test_runs_without_a_result_are_listed_with_the_reason_not_counted(write_run, tmp_path):
    for seed, final in enumerate([100.0, 200.0, 300.0]):
        write_run("ppo", "CartPole-v1", seed, [0, 100], [0.0, final])
    write_run("a2c", "CartPole-v1", 0, [0, 100], [0.0, 50.0])
    write_run("a2c", "CartPole-v1", 2, [0, 100], [0.0, 70.0])
    _leave_unfinished(write_run("a2c", "CartPole-v1", 1, [0, 100], [0.0, 1.0]), error_log=(
        'Traceback (most recent call last):\n  File "runner.py", line 9, in run\n'
        "RuntimeError: CUDA out of memory\n"))
    _leave_unfinished(write_run("a2c", "CartPole-v1", 3, [0], [0.0]), checkpoint=True)
    _leave_unfinished(write_run("dqn", "CartPole-v1", 0, [0], [0.0]), error_log="ValueError: bad preset\nmore\n")
    (tmp_path / "runs" / "stray").mkdir()
    summary = write_report(tmp_path / "runs", tmp_path / "out", reps=50)

    assert summary["settings"]["num_runs"] == 5 and summary["agents"] == ["a2c", "ppo"]
    a2c = summary["per_env"]["CartPole-v1"]["a2c"]
    assert a2c["seeds"] == [0, 2] and a2c["final_return_mean"] == 60.0   # not (50 + 0 + 70 + 0) / 4
    assert summary["metrics"]["a2c"]["mean"]["point"] == pytest.approx(60.0 / 500)
    assert summary["left_out_runs"] == [
        {"run": "stray", "env": None, "agent": None, "seed": None, "reason": "no result"},
        {"run": "a2c_CartPole-v1_1", "env": "CartPole-v1", "agent": "a2c", "seed": 1,
         "reason": "failed: RuntimeError: CUDA out of memory"},
        {"run": "a2c_CartPole-v1_3", "env": "CartPole-v1", "agent": "a2c", "seed": 3,
         "reason": "unfinished (resume it: the compare.py command that made it, or train.py --resume "
                   f"{tmp_path / 'runs' / 'a2c_CartPole-v1_3'})"},
        {"run": "dqn_CartPole-v1_0", "env": "CartPole-v1", "agent": "dqn", "seed": 0,
         "reason": "failed: ValueError: bad preset"}]
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["left_out_runs"] == summary["left_out_runs"]

    markdown = (tmp_path / "out" / "summary.md").read_text()
    assert "| a2c_CartPole-v1_1 | CartPole-v1 | a2c | 1 | failed: RuntimeError: CUDA out of memory |" in markdown
    assert "| stray | — | — | — | no result |" in markdown
    assert "| CartPole-v1 | a2c | 2 of 3: 0, 2 | 60.00 ± 10.00 |" in markdown
    assert "| CartPole-v1 | dqn | 0 of 3 | — | — |" in markdown
    assert "| CartPole-v1 | ppo | 3 | 200.00 ± 81.65 |" in markdown


def test_a_diverged_run_is_left_out_and_the_report_still_written(write_run, tmp_path):
    write_run("ppo", "CartPole-v1", 0, [0, 100], [0.0, 100.0])
    write_run("ppo", "CartPole-v1", 1, [0, 100], [0.0, 300.0])
    write_run("ppo", "CartPole-v1", 2, [0, 100], [0.0, float("nan")])          # final return NaN
    write_run("ppo", "CartPole-v1", 3, [0, 100], [float("inf"), 400.0])        # infinite on the way
    summary = write_report(tmp_path / "runs", tmp_path / "out", reps=50)
    assert summary["settings"]["num_runs"] == 2
    assert summary["per_env"]["CartPole-v1"]["ppo"]["final_return_mean"] == 200.0
    assert [(item["seed"], item["reason"]) for item in summary["left_out_runs"]] == [
        (2, "diverged: non-finite evaluation return"), (3, "diverged: non-finite evaluation return")]
    markdown = (tmp_path / "out" / "summary.md").read_text()
    assert "| ppo_CartPole-v1_2 | CartPole-v1 | ppo | 2 | diverged: non-finite evaluation return |" in markdown


def test_auc_is_taken_over_the_steps_every_run_on_the_env_evaluated(write_run, tmp_path):
    # return = step / 10 evaluated every 1000 steps or at 2500 and 5000: one learner, one AUC,
    # the average of step / 10 over 2500..5000 (before: 300 and 375)
    write_run("dense", "CartPole-v1", 0, [1000, 2000, 3000, 4000, 5000], [100.0, 200.0, 300.0, 400.0, 500.0])
    write_run("sparse", "CartPole-v1", 0, [2500, 5000], [250.0, 500.0])
    # a kink at 3000, off the evenly spaced grid: from 2500 (500 interpolated)
    # (500 * (500 + 600) / 2 + 2000 * (600 + 0) / 2) / 2500 = 350
    write_run("kinked", "CartPole-v1", 0, [0, 3000, 5000], [0.0, 600.0, 0.0])
    summary = write_report(tmp_path / "runs", tmp_path / "out", reps=50)
    assert summary["auc_steps"] == {"CartPole-v1": {"start": 2500.0, "stop": 5000.0}}
    per_env = summary["per_env"]["CartPole-v1"]
    assert per_env["dense"]["auc_mean"] == pytest.approx(375.0, rel=1e-12)
    assert per_env["sparse"]["auc_mean"] == pytest.approx(375.0, rel=1e-12)
    assert per_env["kinked"]["auc_mean"] == pytest.approx(350.0, rel=1e-12)
    assert "(CartPole-v1: steps 2,500–5,000)" in (tmp_path / "out" / "summary.md").read_text()


def test_an_env_whose_runs_share_no_evaluated_step_has_no_auc(write_run, tmp_path):
    write_run("short", "Blackjack-v1", 0, [200], [0.1])
    write_run("long", "Blackjack-v1", 0, [500, 1000], [0.2, 0.3])
    summary = write_report(tmp_path / "runs", tmp_path / "out", reps=50)
    assert summary["auc_steps"] == {"Blackjack-v1": None}
    assert summary["per_env"]["Blackjack-v1"]["long"]["auc_mean"] is None
    assert "(Blackjack-v1: no step shared by all runs, no AUC)" in (tmp_path / "out" / "summary.md").read_text()


def test_another_metric_takes_no_summary_point_and_an_unlogged_one_is_an_error(write_run, tmp_path):
    # the fixture logs charts/episodic_return = -1 at each evaluation; summary.json says 80 at 150
    for seed in range(2):
        write_run("dqn", "CartPole-v1", seed, [0, 100], [10.0, 50.0], final_return=80.0, steps=150)
    summary = write_report(tmp_path / "runs", tmp_path / "out", reps=50, metric="charts/episodic_return")
    row = summary["per_env"]["CartPole-v1"]["dqn"]
    assert row["best_returns"] == [-1.0, -1.0] and row["auc_mean"] == -1.0
    assert summary["auc_steps"] == {"CartPole-v1": {"start": 0.0, "stop": 100.0}}
    assert row["final_return_mean"] == 80.0
    with pytest.raises(ValueError, match=re.escape("no 'eval/retrun_mean' in metrics.jsonl")):
        write_report(tmp_path / "runs", tmp_path / "typo", reps=50, metric="eval/retrun_mean")
