"""Seeds of one grid cell trained together in one process (--seeds-per-process): which runs are
grouped and why the others are not, each seed's results whatever its group, and the folders."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from agents.comparison.execution import execute_group
from agents.comparison.grid import parse_overrides, plan_grid
from agents.comparison.grouping import RunGroup, schedule_jobs
from agents.comparison.runs import load_runs, read_run_folders
from agents.runner import CHECKPOINT, SUMMARY

# PPO on the torch-native CartPole, small enough that a group takes about a second
TINY = ["backend=torch", "eval_every=256", "eval_episodes=2", "num_envs=2", "log_every=64", "steps=512",
        "ppo.num_steps=32", "ppo.update_epochs=2", "ppo.num_minibatches=1"]


def tiny_plan(runs_dir: Path, seeds: list[int], agents: tuple[str, ...] = ("ppo",), extra: tuple[str, ...] = ()):
    return plan_grid(list(agents), ["CartPole-v1"], seeds, parse_overrides([*TINY, *extra], list(agents)), runs_dir)


def test_cells_group_by_k_and_the_rest_run_alone_with_a_reason(tmp_path):
    grid = tiny_plan(tmp_path / "runs", [0, 1, 2, 3, 4], agents=("ppo", "reinforce"))
    own_checkpoint = Path(grid.tasks[3].run_dir)  # ppo seed 3 started as a plain run
    own_checkpoint.mkdir(parents=True)
    (own_checkpoint / CHECKPOINT).write_bytes(b"")

    schedule = schedule_jobs(grid.tasks, 2, tmp_path / "groups")
    groups = [job for job in schedule.jobs if isinstance(job, RunGroup)]
    alone = [(job.agent, job.seed) for job in schedule.jobs if not isinstance(job, RunGroup)]
    assert [group.seeds for group in groups] == [[0, 1], [2, 4]]
    assert [Path(group.run_dir).name for group in groups] == ["CartPole-v1__ppo__seeds0-1",
                                                             "CartPole-v1__ppo__seeds2-4"]
    assert all(Path(group.run_dir).parent == (tmp_path / "groups").resolve() for group in groups)
    assert alone == [("ppo", 3)] + [("reinforce", seed) for seed in range(5)]
    ((name, env, reason),) = schedule.ungrouped
    assert (name, env) == ("reinforce", "CartPole-v1") and "reinforce runs one seed per process" in reason
    assert schedule.resumed == 1

    assert schedule_jobs(grid.tasks, 1, tmp_path / "groups").jobs == grid.tasks
    with pytest.raises(ValueError, match="--seeds-per-process must be at least 1"):
        schedule_jobs(grid.tasks, 0, tmp_path / "groups")


@pytest.mark.parametrize("seeds_per_process", [1, 3])
def test_a_started_group_resumes_whatever_k_the_next_command_asks_for(tmp_path, seeds_per_process):
    grid = tiny_plan(tmp_path / "runs", [0, 1, 2, 3, 4])
    started = tmp_path / "groups" / "CartPole-v1__ppo__seeds1-3"  # an earlier command's, with K = 2
    started.mkdir(parents=True)
    (started / CHECKPOINT).write_bytes(b"")
    (tmp_path / "groups" / "CartPole-v1__ppo__seeds4-9").mkdir()  # not all of its seeds are in the grid

    schedule = schedule_jobs(grid.tasks, seeds_per_process, tmp_path / "groups")
    groups = [(job.seeds, Path(job.run_dir).name) for job in schedule.jobs if isinstance(job, RunGroup)]
    alone = [job.seed for job in schedule.jobs if not isinstance(job, RunGroup)]
    assert groups[0] == ([1, 3], "CartPole-v1__ppo__seeds1-3") and schedule.resumed == 2
    if seeds_per_process == 1:
        assert groups[1:] == [] and alone == [0, 2, 4]
    else:
        assert groups[1:] == [([0, 2, 4], "CartPole-v1__ppo__seeds0-2-4")] and alone == []


@pytest.mark.parametrize("setting, reason", [
    ("backend=gymnasium", "add --set backend=torch"),
    ("target_kl=0.01", "--target-kl"),
])
def test_cells_that_cannot_be_stacked_say_why(tmp_path, setting, reason):
    grid = tiny_plan(tmp_path / "runs", [0, 1], extra=(setting,))
    schedule = schedule_jobs(grid.tasks, 4, tmp_path / "groups")
    assert schedule.jobs == grid.tasks and reason in schedule.ungrouped[0][2]


def test_a_seed_computes_the_same_in_any_group_into_its_own_run_folder(tmp_path):
    pair = tiny_plan(tmp_path / "pair", [3, 5]).tasks
    (alone,) = tiny_plan(tmp_path / "alone", [5]).tasks
    together = execute_group(RunGroup(tuple(pair), str(tmp_path / "groups" / "pair")))
    (by_itself,) = execute_group(RunGroup((alone,), str(tmp_path / "groups" / "alone")))
    assert [outcome.ok for outcome in together] == [True, True] and by_itself.ok

    assert together[1].summary["eval_returns"] == by_itself.summary["eval_returns"]
    assert together[0].summary["eval_returns"] != together[1].summary["eval_returns"]
    paired = torch.load(Path(pair[1].run_dir) / "agent.pt", weights_only=True)["model"]
    single = torch.load(Path(alone.run_dir) / "agent.pt", weights_only=True)["model"]
    assert all(torch.equal(paired[name], single[name]) for name in single)
    metrics = [(Path(task.run_dir) / "metrics.jsonl").read_text() for task in (pair[1], alone)]
    strip_time = [[{k: v for k, v in json.loads(line).items() if k not in ("time", "charts/sps")}
                   for line in text.splitlines()] for text in metrics]
    assert strip_time[0] == strip_time[1]

    for task in pair:  # each seed's ordinary run folder, read back by the report
        assert json.loads((Path(task.run_dir) / "config.json").read_text())["seed"] == task.seed
    runs = load_runs(tmp_path / "pair")
    assert [(run.agent, run.seed) for run in runs] == [("ppo", 3), ("ppo", 5)]
    assert (tmp_path / "groups" / "pair" / CHECKPOINT).is_file()


def test_seeds_of_a_stopped_group_read_as_unfinished_while_its_checkpoint_lasts(tmp_path):
    pair = tiny_plan(tmp_path / "runs", [0, 1], extra=("ppo.steps=256",)).tasks
    group = tmp_path / "groups" / "CartPole-v1__ppo__seeds0-1"
    assert all(outcome.ok for outcome in execute_group(RunGroup(tuple(pair), str(group))))
    (tmp_path / "runs" / "stray").mkdir()
    for task in pair:  # as a group stopped before its end leaves them: no summary, the checkpoint elsewhere
        (Path(task.run_dir) / SUMMARY).unlink()
    with pytest.raises(ValueError, match=r"no finished runs .*: no result; unfinished \(resume it: the compare.py "
                                         r"command that made it\)$"):  # the stray folder, then both seeds
        read_run_folders(tmp_path / "runs")
    (group / CHECKPOINT).unlink()
    with pytest.raises(ValueError, match=r"no finished runs .*: no result$"):
        read_run_folders(tmp_path / "runs")
