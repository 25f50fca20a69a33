"""Reading run folders, the area under the learning curve and the common step grid."""
from __future__ import annotations

import json

import numpy as np
import pytest

from agents.comparison.runs import (final_returns, learning_curves, load_run, load_runs,
                                    normalized_auc, read_curve)


def test_auc_is_the_trapezoid_rule_over_the_step_range():
    # 10 * (0 + 2) / 2 + 20 * (2 + 4) / 2 = 70 over 30 steps
    auc = normalized_auc(np.array([0, 10, 30]), np.array([0.0, 2.0, 4.0]))
    assert auc == pytest.approx(70 / 30)
    # a curve starting later than step 0: (5 * (1 + 3) / 2) / 5
    assert normalized_auc(np.array([100, 105]), np.array([1.0, 3.0])) == pytest.approx(2.0)
    assert normalized_auc(np.array([50]), np.array([7.0])) == 7.0
    with pytest.raises(ValueError, match="no points"):
        normalized_auc(np.array([]), np.array([]))


def test_read_curve_sorts_keeps_last_duplicate_and_skips_other_metrics(tmp_path):
    path = tmp_path / "metrics.jsonl"
    records = [{"step": 20, "time": 2, "eval/return_mean": 5.0},
               {"step": 10, "time": 1, "charts/episodic_return": 99.0},
               {"step": 10, "time": 1, "eval/return_mean": 1.0},
               {"step": 20, "time": 3, "eval/return_mean": 6.0}]   # resumed run: step 20 again
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    steps, values = read_curve(path)
    assert steps.tolist() == [10, 20] and values.tolist() == [1.0, 6.0]
    steps, values = read_curve(path, "charts/episodic_return")
    assert steps.tolist() == [10] and values.tolist() == [99.0]


def test_read_curve_names_the_bad_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "eval/return_mean": 1.0}\n{"step": 2, "eval/ret\n')
    with pytest.raises(ValueError, match="metrics.jsonl:2"):
        read_curve(path)


def test_load_run_closes_the_curve_with_the_final_evaluation(write_run):
    run = load_run(write_run("dqn", "CartPole-v1", 3, [0, 100], [10.0, 50.0],
                             final_return=80.0, steps=150))
    assert (run.agent, run.env, run.seed, run.steps) == ("dqn", "CartPole-v1", 3, 150)
    assert run.final_return == 80.0 and run.final_return_std == 0.5
    assert run.curve_steps.tolist() == [0, 100, 150]
    assert run.curve_returns.tolist() == [10.0, 50.0, 80.0]
    logged_at_end = load_run(write_run("dqn", "CartPole-v1", 4, [0, 100], [10.0, 50.0]))
    assert logged_at_end.curve_steps.tolist() == [0, 100]


def test_load_runs_reads_finished_runs_in_sorted_order(write_run, tmp_path):
    write_run("ppo", "Acrobot-v1", 1, [0, 10], [-500.0, -200.0])
    write_run("dqn", "Acrobot-v1", 2, [0, 10], [-500.0, -300.0])
    write_run("dqn", "Acrobot-v1", 0, [0, 10], [-500.0, -100.0])
    unfinished = tmp_path / "runs" / "still_running"
    unfinished.mkdir()
    (unfinished / "config.json").write_text('{"agent": "a2c", "env": "Acrobot-v1", "seed": 0}')
    runs = load_runs(tmp_path / "runs")
    assert [(run.agent, run.seed) for run in runs] == [("dqn", 0), ("dqn", 2), ("ppo", 1)]
    grouped = final_returns(runs)
    assert list(grouped) == [("dqn", "Acrobot-v1"), ("ppo", "Acrobot-v1")]
    assert grouped[("dqn", "Acrobot-v1")].tolist() == [-100.0, -300.0]
    listed = load_runs([run_dir for run_dir in reversed(sorted((tmp_path / "runs").glob("*_*_*")))])
    assert [run.name for run in listed] == [run.name for run in runs]


def test_load_runs_rejects_bad_folders(write_run, tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_runs(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no finished runs"):
        load_runs(tmp_path / "empty")
    first = write_run("dqn", "CartPole-v1", 0, [0, 10], [1.0, 2.0])
    copy = tmp_path / "runs" / "copy_of_first"
    copy.mkdir()
    for name in ("config.json", "metrics.jsonl", "summary.json"):
        (copy / name).write_bytes((first / name).read_bytes())
    with pytest.raises(ValueError, match="both dqn on CartPole-v1 with seed 0"):
        load_runs(tmp_path / "runs")
    summary = json.loads((copy / "summary.json").read_text())
    del summary["sps"]
    (copy / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(ValueError, match="lacks sps"):
        load_run(copy)
    summary["sps"], summary["seed"] = 1.0, 9
    (copy / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(ValueError, match="disagree on 'seed'"):
        load_run(copy)
    summary["seed"], summary["eval_return_mean"] = 0, float("nan")
    (copy / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(ValueError, match="non-finite"):
        load_run(copy)


def test_learning_curves_interpolate_onto_the_steps_all_seeds_share(write_run, tmp_path):
    write_run("dqn", "CartPole-v1", 0, [0, 10, 20], [0.0, 10.0, 20.0])
    write_run("dqn", "CartPole-v1", 1, [5, 25], [0.0, 20.0])
    curves = learning_curves(load_runs(tmp_path / "runs"), num_points=4)
    grid, returns = curves[("dqn", "CartPole-v1")]
    assert grid.tolist() == [5.0, 10.0, 15.0, 20.0]
    np.testing.assert_allclose(returns, [[5.0, 10.0, 15.0, 20.0], [0.0, 5.0, 10.0, 15.0]])
    with pytest.raises(ValueError, match="at least 2"):
        learning_curves(load_runs(tmp_path / "runs"), num_points=1)


def test_seeds_evaluated_once_at_the_same_step_give_a_one_point_curve(write_run, tmp_path):
    """A run shorter than --eval-every is evaluated only at its end: one point, not a flat line."""
    write_run("sarsa", "Blackjack-v1", 0, [200], [-0.2])
    write_run("sarsa", "Blackjack-v1", 1, [200], [0.4])
    grid, returns = learning_curves(load_runs(tmp_path / "runs"))[("sarsa", "Blackjack-v1")]
    assert grid.tolist() == [200.0]
    np.testing.assert_allclose(returns, [[-0.2], [0.4]])
