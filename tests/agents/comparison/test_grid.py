"""The comparison grid: --set parsing, grid planning, the local process pool, skipping finished
runs, resuming a run whose worker died, failures that spare the other runs, and the report."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch

from agents.comparison.backends import LocalBackend
from agents.comparison.execution import RunOutcome, execute_group, execute_job, execute_run, write_returned_files
from agents.comparison.grid import (Overrides, RunTask, load_experiment_file, overrides_from_table,
                                    parse_names, parse_overrides, parse_seeds, parse_value, plan_grid)
from agents.comparison.grouping import Job, RunGroup, job_tasks
from agents.runner import CHECKPOINT, Runner

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))
import compare  # noqa: E402  (scripts/compare.py)

# PPO on CartPole small enough that one run takes about a second
TINY = ["eval_every=0", "eval_episodes=2", "num_envs=2", "num_steps=32", "update_epochs=2",
        "num_minibatches=1", "log_every=64"]


def tiny_tasks(runs_dir: Path, seeds: list[int], steps: int = 512, extra: tuple[str, ...] = ()) -> list[RunTask]:
    overrides = parse_overrides([f"steps={steps}", *TINY, *extra], ["ppo"])
    return plan_grid(["ppo"], ["CartPole-v1"], seeds, overrides, runs_dir).tasks


def model_of(run_dir: str | Path) -> dict[str, torch.Tensor]:
    return torch.load(Path(run_dir) / CHECKPOINT, weights_only=True)["model"]


# ----------------------------------------------------------------------------- parsing
def test_parse_value_reads_json_else_keeps_the_string():
    assert parse_value("3e-4") == 3e-4
    assert parse_value("5000") == 5000
    assert parse_value("true") is True
    assert parse_value('{"hidden_sizes": [64, 64]}') == {"hidden_sizes": [64, 64]}
    assert parse_value("nature") == "nature"
    assert parse_value("") == ""


def test_parse_seeds_count_or_list():
    assert parse_seeds(3) == [0, 1, 2]
    assert parse_seeds("5") == [0, 1, 2, 3, 4]
    assert parse_seeds("3,7") == [3, 7]
    assert parse_seeds([4, 2]) == [4, 2]
    for bad in (0, "0", "a", "1,1", "-1,2", [], True):
        with pytest.raises(ValueError):
            parse_seeds(bad)


def test_parse_names():
    assert parse_names("dqn, ppo", "agents") == ["dqn", "ppo"]
    assert parse_names(["CartPole-v1"], "envs") == ["CartPole-v1"]
    with pytest.raises(ValueError, match="listed twice: ppo"):
        parse_names("ppo,dqn,ppo", "agents")
    with pytest.raises(ValueError, match="no envs"):
        parse_names(" , ", "envs")


def test_overrides_global_and_per_agent_with_typed_values():
    overrides = parse_overrides(["eval_every=5000", "ppo.learning_rate=3e-4", "dqn.batch_size=32",
                                 "ppo.encoder_options={\"hidden_sizes\": [32]}", "normalize_obs=true",
                                 "log_every=1e3", "dqn.learning_rate=1", "encoder=mlp", "device=0"],
                                ["dqn", "ppo"])
    assert overrides.common == {"eval_every": 5000, "normalize_obs": True, "log_every": 1000,
                                "encoder": "mlp", "device": "0"}
    assert overrides.per_agent == {"ppo": {"learning_rate": 3e-4, "encoder_options": {"hidden_sizes": [32]}},
                                   "dqn": {"batch_size": 32, "learning_rate": 1.0}}
    assert type(overrides.common["log_every"]) is int
    assert type(overrides.per_agent["dqn"]["learning_rate"]) is float


@pytest.mark.parametrize("assignment, message", [
    ("eval_every", "expects key=value"),
    ("=3", "expects key=value"),
    ("learning_rat=0.1", "unknown dqn setting 'learning_rat'"),
    ("batch_size=32", "unknown ppo setting 'batch_size' .*agent.key=value"),
    ("ppo.batch_size=32", "unknown ppo setting 'batch_size'"),
    ("nope.learning_rate=0.1", "'nope' is not an agent of this grid \\(agents: a2c, dqn, "),
    ("seed=3", "the grid sets 'seed'"),
    ("ppo.env=Pong", "the grid sets 'env'"),
    ("eval_every=often", "--set eval_every expects int, got \"often\""),
    ("eval_every=0.5", "expects int, got 0.5"),
    ("ppo.anneal_lr=1", "expects bool, got 1"),
    ("ppo.encoder_options=[64]", "expects dict"),
])
def test_overrides_errors(assignment, message):
    with pytest.raises(ValueError, match=message):
        parse_overrides([assignment], ["dqn", "ppo"])


def test_override_for_an_agent_outside_the_grid_is_an_error():
    with pytest.raises(ValueError, match="'dqn' is not an agent of this grid$"):
        parse_overrides(["dqn.batch_size=32"], ["ppo"])


def test_experiment_file_toml_and_yaml(tmp_path, monkeypatch):
    toml = tmp_path / "exp.toml"
    toml.write_text('agents = ["dqn", "ppo"]\nenvs = "CartPole-v1"\nseeds = 3\nsteps = 2000\n'
                    '[set]\neval_every = 0\nencoder_options = {hidden_sizes = [32]}\n'
                    '[set.ppo]\nlearning_rate = 3e-4\nencoder = "mlp"\n')
    fields = load_experiment_file(toml)
    assert fields["seeds"] == 3 and fields["agents"] == ["dqn", "ppo"]
    assignments = overrides_from_table(fields["set"], fields["agents"])
    assert assignments == ["eval_every=0", 'encoder_options={"hidden_sizes": [32]}',
                           "ppo.learning_rate=0.0003", 'ppo.encoder="mlp"']
    overrides = parse_overrides(assignments, fields["agents"])
    assert overrides == Overrides({"eval_every": 0, "encoder_options": {"hidden_sizes": [32]}},
                                  {"ppo": {"learning_rate": 3e-4, "encoder": "mlp"}})
    yaml_file = tmp_path / "exp.yaml"
    yaml_file.write_text("agents: [ppo]\nenvs: [CartPole-v1, Acrobot-v1]\nseeds: [1, 2]\nset: [eval_every=0]\n")
    if _has_yaml():
        assert load_experiment_file(yaml_file) == {"agents": ["ppo"], "envs": ["CartPole-v1", "Acrobot-v1"],
                                                   "seeds": [1, 2], "set": ["eval_every=0"]}
    monkeypatch.setitem(sys.modules, "yaml", None)  # as if PyYAML were not installed
    with pytest.raises(ValueError, match="needs PyYAML"):
        load_experiment_file(yaml_file)
    (tmp_path / "bad.toml").write_text("agents = ['ppo']\nworker = 3\n")
    with pytest.raises(ValueError, match="unknown field\\(s\\) worker"):
        load_experiment_file(tmp_path / "bad.toml")
    (tmp_path / "exp.json").write_text("{}")
    with pytest.raises(ValueError, match="must end in .toml, .yaml or .yml"):
        load_experiment_file(tmp_path / "exp.json")
    with pytest.raises(ValueError, match="does not exist"):
        load_experiment_file(tmp_path / "missing.toml")


def _has_yaml() -> bool:
    try:
        import yaml  # noqa: F401
    except ImportError:
        return False
    return True


# ----------------------------------------------------------------------------- planning
def test_plan_expands_the_grid_with_settings_in_order_and_skips_incompatible_pairs(tmp_path):
    overrides = parse_overrides(["steps=1000", "learning_rate=5e-4", "ppo.learning_rate=3e-4", "ppo.gamma=0.9"],
                                ["dqn", "ppo"])
    plan = plan_grid(["dqn", "ppo"], ["CartPole-v1", "Pendulum-v1"], [0, 3], overrides, tmp_path / "runs")
    names = [Path(task.run_dir).name for task in plan.tasks]
    assert names == ["CartPole-v1__dqn__seed0", "CartPole-v1__dqn__seed3", "CartPole-v1__ppo__seed0",
                     "CartPole-v1__ppo__seed3", "Pendulum-v1__ppo__seed0", "Pendulum-v1__ppo__seed3"]
    assert [(t.agent, t.env, t.seed) for t in plan.tasks][-1] == ("ppo", "Pendulum-v1", 3)
    assert all(Path(t.run_dir).parent == (tmp_path / "runs").resolve() for t in plan.tasks)
    assert [(agent, env) for agent, env, _ in plan.incompatible] == [("dqn", "Pendulum-v1")]
    assert "discrete action space" in plan.incompatible[0][2]
    dqn, ppo_cartpole, ppo_pendulum = plan.tasks[0].settings, plan.tasks[2].settings, plan.tasks[4].settings
    # defaults < preset < grid threads < global --set < per-agent --set
    assert (dqn["learning_rate"], dqn["batch_size"], dqn["gamma"]) == (5e-4, 64, 0.99)
    assert (ppo_cartpole["learning_rate"], ppo_cartpole["gamma"], ppo_cartpole["num_envs"]) == (3e-4, 0.9, 8)
    assert (ppo_pendulum["num_steps"], ppo_pendulum["gamma"]) == (1024, 0.9)
    assert {t.settings["torch_threads"] for t in plan.tasks} == {1}
    assert {t.settings["steps"] for t in plan.tasks} == {1000}
    assert [t.settings["seed"] for t in plan.tasks] == [0, 3, 0, 3, 0, 3]
    assert plan.finished == [] and plan.resumed == []


def test_plan_sorts_runs_by_what_is_on_disk(tmp_path):
    # Seed 0 finished the budget; seed 1 stopped before its end; seed 2 never checkpointed;
    # seed 3 finished 500 steps, a budget this grid has raised to 1,000; seed 4 has no folder.
    on_disk = {0: {"summary.json": '{"steps": 1024}', CHECKPOINT: "x"}, 1: {CHECKPOINT: "x"},
               2: {"metrics.jsonl": "x"}, 3: {"summary.json": '{"steps": 512}', CHECKPOINT: "x"}}
    for seed, files in on_disk.items():
        run_dir = tmp_path / "runs" / f"CartPole-v1__ppo__seed{seed}"
        run_dir.mkdir(parents=True)
        for name, text in files.items():
            (run_dir / name).write_text(text)
    plan = plan_grid(["ppo"], ["CartPole-v1"], [0, 1, 2, 3, 4], parse_overrides(["steps=1000"], ["ppo"]),
                     tmp_path / "runs")
    assert [task.seed for task in plan.finished] == [0]
    assert [task.seed for task in plan.tasks] == [1, 2, 3, 4]
    assert [task.seed for task in plan.resumed] == [1, 3]


def test_plan_rejects_bad_configs_and_envs(tmp_path):
    with pytest.raises(ValueError, match="learning_rate must be positive"):
        plan_grid(["ppo"], ["CartPole-v1"], [0], parse_overrides(["learning_rate=-1"], ["ppo"]), tmp_path)
    with pytest.raises(ValueError, match="NoSuchEnv"):
        plan_grid(["ppo"], ["NoSuchEnv-v0"], [0], Overrides(), tmp_path)
    with pytest.raises(ValueError, match="unknown agent 'nope'"):
        plan_grid(["nope"], ["CartPole-v1"], [0], Overrides(), tmp_path)


def test_returned_files_are_written_unless_the_run_folder_holds_the_returned_run(tmp_path):
    task = RunTask("ppo", "CartPole-v1", 0, str(tmp_path / "run"), {})
    run_dir = tmp_path / "run"

    def on_disk():
        return {name: (run_dir / name).read_text() for name in files}
    files = {"config.json": "{}\n", "metrics.jsonl": '{"step": 1}\n', "summary.json": '{"steps": 1}\n'}
    write_returned_files(RunOutcome(task, {"steps": 1}, files=files))  # a worker without shared storage
    assert on_disk() == files
    (run_dir / "metrics.jsonl").write_text("shared storage wrote this")  # the worker wrote the folder
    write_returned_files(RunOutcome(task, {"steps": 1}, files=files))
    assert (run_dir / "metrics.jsonl").read_text() == "shared storage wrote this"
    longer = {"config.json": "{}\n", "metrics.jsonl": '{"step": 1}\n{"step": 2}\n', "summary.json": '{"steps": 2}\n'}
    write_returned_files(RunOutcome(task, {"steps": 2}, files=longer))  # the run taken further
    assert on_disk() == longer


# ----------------------------------------------------------------------------- command line
@pytest.mark.parametrize("extra, message", [
    (["--set", "ppo.batch_size=32"], "unknown ppo setting 'batch_size'"),
    (["--set", "dqn.batch_size=32"], "'dqn' is not an agent of this grid"),
    (["--gpus-per-run", "0.5"], "need --backend ray"),
    (["--workers", "0"], "--workers must be at least 1"),
    (["--seeds", "0"], "number of seeds must be at least 1"),
    (["--seeds-per-process", "0"], "--seeds-per-process must be at least 1"),
])
def test_cli_errors_exit_2_before_anything_runs(tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        compare.main(["--agents", "ppo", "--envs", "CartPole-v1", "--out", str(out), *extra])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1
    assert not out.exists()


def test_cli_refuses_an_output_folder_under_a_file(tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("a file")
    with pytest.raises(SystemExit) as exit_info:
        compare.main(["--agents", "ppo", "--envs", "CartPole-v1", "--out", str(taken / "out")])
    assert exit_info.value.code == 2
    assert f"the runs cannot go under '{taken}': it is a file" in capsys.readouterr().err
    assert taken.read_text() == "a file"


def test_cli_requires_a_grid(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        compare.main(["--agents", "ppo", "--out", str(tmp_path)])
    assert exit_info.value.code == 2 and "--envs is required" in capsys.readouterr().err


# ----------------------------------------------------------------------------- running
def test_rerun_skips_finished_runs_a_failed_run_spares_the_others_and_the_report_is_stable(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--agents", "ppo", "--envs", "CartPole-v1", "--seeds", "2", "--steps", "256", "--out", str(out),
            "--workers", "2", "--no-progress", *[item for s in TINY for item in ("--set", s)]]
    broken = out / "runs" / "CartPole-v1__ppo__seed1"
    broken.mkdir(parents=True)
    (broken / CHECKPOINT).write_bytes(b"not a checkpoint")

    assert compare.main(argv) == 1
    printed = capsys.readouterr()
    assert "2 runs: 0 finished (skipped), 1 to resume, 1 new" in printed.out
    assert "ppo CartPole-v1 seed 0: eval return" in printed.out
    assert "ppo CartPole-v1 seed 1: FAILED ValueError: checkpoint" in printed.out
    assert "1 of 2 runs failed" in printed.err
    assert "is corrupt" in (broken / "error.log").read_text()
    finished = out / "runs" / "CartPole-v1__ppo__seed0"
    assert {"config.json", "metrics.jsonl", "summary.json", CHECKPOINT} <= {p.name for p in finished.iterdir()}
    assert json.loads((out / "summary.json").read_text())["settings"]["num_runs"] == 1
    first_summary = (finished / "summary.json").read_text()

    (broken / CHECKPOINT).unlink()
    assert compare.main(argv) == 0
    printed = capsys.readouterr().out
    assert "2 runs: 1 finished (skipped), 0 to resume, 1 new" in printed
    assert "seed 0:" not in printed and "ppo CartPole-v1 seed 1: eval return" in printed
    assert (finished / "summary.json").read_text() == first_summary
    assert not (broken / "error.log").exists()
    assert json.loads((out / "summary.json").read_text())["settings"]["num_runs"] == 2

    reports = []
    for _ in range(2):
        assert compare.main(["--report", str(out)]) == 0
        reports.append({name: (out / name).read_bytes() for name in ("summary.json", "summary.md")})
    assert reports[0] == reports[1]
    assert json.loads(reports[0]["summary.json"])["agents"] == ["ppo"]


def test_a_rerun_with_a_larger_budget_takes_the_finished_runs_on_to_it(tmp_path, capsys):
    out = tmp_path / "out"

    def argv(steps: int) -> list[str]:
        return ["--agents", "ppo", "--envs", "CartPole-v1", "--seeds", "1", "--steps", str(steps), "--out", str(out),
                "--workers", "1", "--no-progress", *[item for s in TINY for item in ("--set", s)]]
    run_dir = out / "runs" / "CartPole-v1__ppo__seed0"
    assert compare.main(argv(256)) == 0
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 256
    capsys.readouterr()
    assert compare.main(argv(512)) == 0
    assert "1 runs: 0 finished (skipped), 1 to resume, 0 new" in capsys.readouterr().out
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 512
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[0] <= 64 and steps[-1] == 512  # one curve, continued
    assert json.loads((out / "summary.json").read_text())["per_env"]["CartPole-v1"]["ppo"]["steps_mean"] == 512
    assert compare.main(argv(512)) == 0
    assert "1 runs: 1 finished (skipped), 0 to resume, 0 new" in capsys.readouterr().out


def test_a_rerun_with_other_settings_is_refused_rather_than_reporting_the_old_runs(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--agents", "ppo", "--envs", "CartPole-v1", "--seeds", "1", "--steps", "256", "--out", str(out),
            "--workers", "1", "--no-progress", *[item for s in TINY for item in ("--set", s)]]
    assert compare.main(argv) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        compare.main([*argv, "--set", "learning_rate=0.01", "--set", "gamma=0.9"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and err == (
        f"error: {out.resolve() / 'runs' / 'CartPole-v1__ppo__seed0'} holds a run made with learning_rate=0.001 (now 0.01), "
        "gamma=0.98 (now 0.9): give another --out for new settings")
    assert compare.main([*argv, "--set", "eval_episodes=3"]) == 0  # what a resume may change: skipped, finished
    # taken further, a run resumes with the grid's evaluation settings, as train.py --resume would
    assert compare.main([*argv[:7], "512", *argv[8:], "--set", "eval_episodes=3"]) == 0
    summary = json.loads((out / "runs" / "CartPole-v1__ppo__seed0" / "summary.json").read_text())
    assert summary["steps"] == 512 and len(summary["eval_returns"]) == 3


def die_after_first_checkpoint(job: Job) -> list[RunOutcome]:
    """``execute_job``, except that the worker process of the job holding seed 0 dies right after
    the job's first checkpoint, the first time only (a marker file beside its folder remembers)."""
    marker = Path(job.run_dir + ".died")
    if 0 in [task.seed for task in job_tasks(job)] and not marker.exists():
        write_checkpoint = Runner._checkpoint

        def checkpoint_then_die(self, *args):
            write_checkpoint(self, *args)
            marker.touch()
            os._exit(1)

        Runner._checkpoint = checkpoint_then_die
    return execute_job(job)


def test_a_run_whose_worker_died_resumes_in_a_fresh_pool_exactly(tmp_path):
    tasks = tiny_tasks(tmp_path / "runs", [0, 1], extra=("checkpoint_every=128",))
    outcomes = {o.task.seed: o for o in LocalBackend(2, run_fn=die_after_first_checkpoint).run(tasks)}
    assert Path(tasks[0].run_dir + ".died").exists()
    assert all(outcome.ok for outcome in outcomes.values()), outcomes
    assert outcomes[0].resumed and outcomes[0].summary["steps"] == 512

    reference = execute_run(tiny_tasks(tmp_path / "reference", [0], extra=("checkpoint_every=128",))[0])
    assert outcomes[0].summary["eval_returns"] == reference.summary["eval_returns"]
    resumed_model, reference_model = model_of(tasks[0].run_dir), model_of(reference.task.run_dir)
    assert resumed_model.keys() == reference_model.keys()
    assert all(torch.equal(resumed_model[name], reference_model[name]) for name in reference_model)
    steps = [json.loads(line)["step"] for line in (Path(tasks[0].run_dir) / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 512


def test_a_group_whose_worker_died_resumes_in_a_fresh_pool_exactly(tmp_path):
    def group(name: str) -> RunGroup:
        tasks = tiny_tasks(tmp_path / name, [0, 1], extra=("checkpoint_every=128", "backend=torch"))
        return RunGroup(tuple(tasks), str(tmp_path / "groups" / name))

    interrupted, reference = group("runs"), group("reference")
    outcomes = list(LocalBackend(1, run_fn=die_after_first_checkpoint).run([interrupted]))
    assert Path(interrupted.run_dir + ".died").exists()
    assert [(o.task.seed, o.ok, o.resumed) for o in outcomes] == [(0, True, True), (1, True, True)]
    for outcome, expected in zip(outcomes, execute_group(reference), strict=True):
        assert outcome.summary["eval_returns"] == expected.summary["eval_returns"]
        resumed_model = torch.load(Path(outcome.task.run_dir) / "agent.pt", weights_only=True)["model"]
        reference_model = torch.load(Path(expected.task.run_dir) / "agent.pt", weights_only=True)["model"]
        assert all(torch.equal(resumed_model[name], reference_model[name]) for name in reference_model)


def test_a_run_whose_worker_keeps_dying_is_reported_failed(tmp_path):
    tasks = tiny_tasks(tmp_path / "runs", [0], extra=("checkpoint_every=128",))
    (outcome,) = LocalBackend(1, run_fn=die_after_first_checkpoint, max_worker_deaths=1).run(tasks)
    assert not outcome.ok and outcome.error == "its worker process died (1 of 1 attempts)"
