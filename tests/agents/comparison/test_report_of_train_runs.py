"""``compare.py --report`` on runs trained by train.py: a folder of run folders, a --num-seeds
run counting one run per seed, and the report written into --out."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from agents.comparison.runs import run_folders_in
from agents.runner import JOINT_RUN, SUMMARY

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))
import compare  # noqa: E402  (scripts/compare.py)


@pytest.fixture
def train_runs(write_run, tmp_path) -> Path:
    """runs/ as train.py leaves it: two plain a2c runs, a 3-seed ppo run and a folder with nothing."""
    runs = tmp_path / "runs"
    for seed, final in ((1, 480.0), (2, 500.0)):
        write_run("a2c", "CartPole-v1", seed, [5000, 10000], [200.0, final])
    multi = runs / "ppo_three_seeds"
    multi.mkdir()
    (multi / "checkpoint.pt").write_bytes(b"")
    for seed, final in ((1, 300.0), (2, 400.0), (3, 500.0)):
        write_run("ppo", "CartPole-v1", seed, [5000, 10000], [100.0, final]).rename(multi / f"seed_{seed}")
    (runs / "stray").mkdir()
    return runs


def test_run_folders_in_reads_a_multi_seed_run_as_its_seeds(train_runs):
    seeds = [train_runs / "ppo_three_seeds" / f"seed_{seed}" for seed in (1, 2, 3)]
    assert run_folders_in(train_runs) == [train_runs / "a2c_CartPole-v1_1", train_runs / "a2c_CartPole-v1_2",
                                          *seeds, train_runs / "stray"]
    assert run_folders_in(train_runs / "ppo_three_seeds") == seeds
    assert run_folders_in(seeds[0]) == [seeds[0]]


def test_report_of_a_folder_of_train_runs_goes_into_out(train_runs, tmp_path, capsys):
    out = tmp_path / "report"
    assert compare.main(["--report", str(train_runs), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    cells = summary["per_env"]["CartPole-v1"]
    assert cells["a2c"]["seeds"] == [1, 2] and cells["a2c"]["final_return_mean"] == 490.0
    assert cells["ppo"]["seeds"] == [1, 2, 3] and cells["ppo"]["final_return_mean"] == 400.0
    assert [(item["run"], item["reason"]) for item in summary["left_out_runs"]] == [("stray", "no result")]
    assert (out / "summary.md").is_file() and (out / "curves.png").is_file()
    assert not (train_runs / "summary.json").exists()

    alone = tmp_path / "alone"  # one multi-seed run and one plain run (named twice), on the command line
    assert compare.main(["--report", str(train_runs / "ppo_three_seeds"), str(train_runs / "a2c_CartPole-v1_1"),
                         str(train_runs / "a2c_CartPole-v1_1"), "--out", str(alone)]) == 0
    cells = json.loads((alone / "summary.json").read_text())["per_env"]["CartPole-v1"]
    assert cells["ppo"]["seeds"] == [1, 2, 3] and cells["a2c"]["seeds"] == [1]


@pytest.mark.parametrize("out, message", [
    (None, "holds run folders, not a comparison (OUT/runs): give --out DIR for the report"),
    ("runs/a2c_CartPole-v1_1", "is a run folder, whose summary.json the report would overwrite: pick another"),
    ("runs/ppo_three_seeds", "is a run folder, whose summary.json the report would overwrite: pick another"),
])
def test_report_of_train_runs_refuses_to_write_over_them(train_runs, tmp_path, capsys, out, message):
    argv = ["--report", str(train_runs)] + ([] if out is None else ["--out", str(tmp_path / out)])
    with pytest.raises(SystemExit) as exit_info:
        compare.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and message in err, err


def test_a_stopped_multi_seed_run_is_listed_with_its_resume_command(train_runs, tmp_path):
    seed_dir = train_runs / "ppo_three_seeds" / "seed_3"
    (seed_dir / SUMMARY).unlink()
    (seed_dir / JOINT_RUN).write_text(json.dumps({"run_dir": ".."}))  # as train.py --num-seeds writes it
    assert compare.main(["--report", str(train_runs), "--out", str(tmp_path / "report")]) == 0
    left_out = json.loads((tmp_path / "report" / "summary.json").read_text())["left_out_runs"]
    assert {"run": "ppo_three_seeds/seed_3", "env": "CartPole-v1", "agent": "ppo", "seed": 3,
            "reason": f"unfinished (resume it: train.py --resume {train_runs / 'ppo_three_seeds'})"} in left_out


def test_a_report_joins_comparisons_and_train_runs(train_runs, write_run, tmp_path):
    comparison = tmp_path / "cmp"
    (comparison / "runs").mkdir(parents=True)
    write_run("dqn", "CartPole-v1", 0, [5000, 10000], [100.0, 200.0]).rename(comparison / "runs" / "dqn_run")
    assert compare.main(["--report", str(comparison), str(train_runs / "a2c_CartPole-v1_2"),
                         "--out", str(tmp_path / "joined")]) == 0
    summary = json.loads((tmp_path / "joined" / "summary.json").read_text())
    assert sorted(summary["per_env"]["CartPole-v1"]) == ["a2c", "dqn"] and summary["left_out_runs"] == []
