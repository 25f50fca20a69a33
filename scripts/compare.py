"""Compare agents over environments and seeds, then report with confidence intervals.

  python scripts/compare.py --agents dqn,ppo --envs CartPole-v1,Acrobot-v1 --seeds 5 \\
      --steps 100000 --set eval_every=5000 --set ppo.learning_rate=3e-4 --out cmp/classic

Every (agent, env, seed) is an ordinary run folder OUT/runs/<env>__<agent>__seed<k>/ (the same
files as scripts/train.py writes), trained by --workers local processes or by Ray tasks
(--backend ray, --address auto or HOST:PORT; see agents/comparison/backends.py for storage).
--seeds-per-process K trains up to K seeds of an agent together in one process (as train.py's
--num-seeds does) where the agent has a multi-seed version and runs on torch-native envs
(--set backend=torch); see agents/comparison/grouping.py.
Afterwards OUT/summary.md, summary.json, curves.png and aggregate.png compare the agents
(Agarwal et al. 2021: IQM, optimality gap, probability of improvement, performance profiles).

Running the same command again skips finished runs and resumes unfinished ones from their
checkpoint.pt, with the checkpoint's settings (only --steps may grow: a larger --steps takes
finished runs on to the new budget, their schedules stretched over it). Pairs an agent cannot
handle (dqn on continuous actions) are listed and skipped. The exit status is 1 if any run
failed (its traceback is in its folder's error.log), 2 for bad arguments.

--variant adds a named variant as a column of its own: a known name (dqn+double, dqn+dueling,
dqn+noisy, dqn+prioritized, dqn+nstep, dqn+c51, rainbow) or NAME=AGENT:key=value,key=value,
e.g. --variant dqn+double=dqn:double=true --variant 'rainbow=dqn:preset="rainbow"'. Its runs
are OUT/runs/<env>__<variant>__seed<k>/ and its settings win over --set.

--set key=value applies to every agent, --set agent.key=value to one (and to its variants);
values are JSON where they parse as JSON, else strings. --config FILE (.toml, or .yaml with
PyYAML) holds the same fields under the flags' long names (agents, envs, seeds, steps, out,
workers, backend, address, gpus_per_run, cpus_per_run, seeds_per_process, variants: a list of
--variant strings, and set: a table with agent sub-tables, or a list of "key=value"); flags
given on the command line win (and --variant / --set add to the file's). --report OUT rebuilds
the report only; --report RUN_FOLDERS... --out DIR reports on runs trained by train.py (a folder
of runs such as runs/, a --num-seeds run as one run per seed, or single run folders).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from agents.cli import ArgumentParser, fail, parse_int
from agents.comparison.backends import LocalBackend, RayBackend
from agents.comparison.execution import Backend, run_all
from agents.comparison.grid import (Plan, load_experiment_file, overrides_from_table, parse_names,
                                    parse_overrides, parse_seeds, plan_grid)
from agents.comparison.grouping import Schedule, schedule_jobs
from agents.comparison.report import write_report
from agents.comparison.runs import run_folders_in, runs_of_one_run
from agents.comparison.variants import CATALOGUE, parse_variant, variant_agents
from agents.registry import AGENTS

DEFAULT_SEEDS = 5


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="compare.py", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    grid = parser.add_argument_group("grid")
    grid.add_argument("--agents", help=f"comma-separated agents: {', '.join(sorted(AGENTS))}")
    grid.add_argument("--variant", action="append", default=[], metavar="NAME[=AGENT:KEY=VALUE,...]",
                      help=f"a named variant as a column of its own (repeatable): {', '.join(CATALOGUE)}, "
                           "or defined here")
    grid.add_argument("--envs", help="comma-separated environment ids")
    grid.add_argument("--seeds", help=f"a count N (seeds 0..N-1) or a comma-separated list (default: {DEFAULT_SEEDS})")
    grid.add_argument("--steps", type=parse_int, help="environment steps per run (default: each agent's default)")
    grid.add_argument("--set", action="append", default=[], metavar="[AGENT.]KEY=VALUE",
                      help="a setting for every agent, or for AGENT only (repeatable)")
    grid.add_argument("--config", metavar="FILE", help="experiment file (.toml or .yaml) with these fields")
    grid.add_argument("--out", help="output folder: runs/ and the report")
    execution = parser.add_argument_group("execution")
    execution.add_argument("--backend", choices=("local", "ray"), help="local process pool or Ray (default: local)")
    execution.add_argument("--workers", type=parse_int, help="local processes (default: number of CPU cores)")
    execution.add_argument("--address", help="Ray cluster: auto or HOST:PORT (default: a local Ray instance)")
    execution.add_argument("--cpus-per-run", type=float, help="CPUs per run; also its torch threads (default: 1)")
    execution.add_argument("--gpus-per-run", type=float, help="GPUs per Ray task, e.g. 0.25 (default: 0); "
                           "add --set device=cuda")
    execution.add_argument("--seeds-per-process", type=parse_int, metavar="K",
                           help="train up to K seeds of an agent together in one process, where it runs on "
                                "torch-native envs (--set backend=torch) and has a multi-seed version "
                                "(default: 1, each seed alone)")
    execution.add_argument("--no-progress", action="store_true", help="no overall progress bar")
    parser.add_argument("--report", metavar="PATH", nargs="+",
                        help="only write a report: a comparison's OUT (from OUT/runs, into OUT), or run folders, "
                             "folders of them (train.py's runs/, --num-seeds runs counting a run per seed) and "
                             "comparisons' OUT folders together into --out")
    return parser


def experiment_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The experiment file's fields with the flags given on the command line on top."""
    fields = load_experiment_file(args.config) if args.config else {}
    for name in ("agents", "envs", "seeds", "steps", "out", "workers", "backend", "address",
                 "gpus_per_run", "cpus_per_run", "seeds_per_process"):
        if getattr(args, name) is not None:
            fields[name] = getattr(args, name)
    fields["variants"] = _string_list(fields.get("variants", []), "variants") + args.variant
    if "agents" not in fields and not fields["variants"]:
        raise ValueError("--agents or --variant is required (on the command line or in --config)")
    for name in ("envs", "out"):
        if name not in fields:
            raise ValueError(f"--{name} is required (on the command line or in --config)")
    return fields


def _string_list(value: Any, what: str) -> list[str]:
    if not (isinstance(value, list) and all(isinstance(item, str) for item in value)):
        raise ValueError(f"'{what}' must be a list of strings")
    return value


def set_assignments(fields: dict[str, Any], cli: list[str], agents: list[str]) -> list[str]:
    """``--set`` strings: the file's ``set`` (table or list), then the command line's."""
    from_file = fields.get("set", [])
    if isinstance(from_file, dict):
        from_file = overrides_from_table(from_file, agents)
    elif not (isinstance(from_file, list) and all(isinstance(item, str) for item in from_file)):
        raise ValueError("'set' must be a table of settings or a list of \"key=value\" strings")
    steps = [f"steps={int(fields['steps'])}"] if fields.get("steps") is not None else []
    return steps + from_file + cli


def make_backend(fields: dict[str, Any]) -> Backend:
    backend = fields.get("backend", "local")
    cpus, gpus = float(fields.get("cpus_per_run", 1)), float(fields.get("gpus_per_run", 0))
    if backend == "ray":
        return RayBackend(fields.get("address"), cpus, gpus)
    if backend != "local":
        raise ValueError(f"backend must be local or ray, got '{backend}'")
    if gpus or fields.get("address"):
        raise ValueError("--gpus-per-run and --address need --backend ray")
    workers = fields.get("workers")
    return LocalBackend(int(workers) if workers is not None else os.cpu_count() or 1)


def plan(fields: dict[str, Any], cli_sets: list[str]) -> Plan:
    agents = parse_names(fields["agents"], "agents") if "agents" in fields else []
    variants = [parse_variant(text) for text in fields.get("variants", [])]
    envs = parse_names(fields["envs"], "envs")
    seeds = parse_seeds(fields.get("seeds", DEFAULT_SEEDS))
    built = variant_agents(agents, variants)
    overrides = parse_overrides(set_assignments(fields, cli_sets, built), built)
    threads = max(1, int(float(fields.get("cpus_per_run", 1))))
    # without shared storage a Ray task's files must come back; on one machine it costs little
    return_files = fields.get("backend", "local") == "ray"
    return plan_grid(agents, envs, seeds, overrides, Path(fields["out"]) / "runs", threads, return_files,
                     variants)


def print_plan(grid: Plan, schedule: Schedule) -> None:
    total = len(grid.tasks) + len(grid.finished)
    resumed = schedule.resumed
    print(f"{total} runs: {len(grid.finished)} finished (skipped), {resumed} to resume, "
          f"{len(grid.tasks) - resumed} new")
    if len(schedule.jobs) < len(grid.tasks):
        print(f"{len(grid.tasks)} runs to train in {len(schedule.jobs)} processes")
    for agent, env, reason in grid.incompatible:
        print(f"skipped {agent} on {env}: {reason}")
    for agent, env, reason in schedule.ungrouped:
        print(f"one seed per process for {agent} on {env}: {reason}")


def report(runs: Path | list[Path], out: Path, factors: dict[str, Any] | None = None) -> dict:
    summary = write_report(runs, out, factors=factors)
    print(f"report of {summary['settings']['num_runs']} runs: {out / 'summary.md'}")
    return summary


def report_only(paths: list[str], out: str | None) -> None:
    """``--report``: a comparison's report rebuilt, or a report written into ``out`` of run folders,
    folders of them and comparisons' OUT folders (their runs/) together."""
    sources = [Path(path) for path in paths]
    for source in sources:
        if not source.is_dir():
            raise ValueError(f"--report {source}: no such folder")
    if len(sources) == 1 and (sources[0] / "runs").is_dir():
        report(sources[0] / "runs", Path(out) if out else sources[0])
        return
    if out is None:
        raise ValueError(f"{' '.join(paths)} holds run folders, not a comparison (OUT/runs): give --out DIR "
                         f"for the report")
    if runs_of_one_run(Path(out)) is not None:
        raise ValueError(f"--out {out} is a run folder, whose summary.json the report would overwrite: pick another")
    comparisons = [source / "runs" if (source / "runs").is_dir() else source for source in sources]
    runs = dict.fromkeys(run.resolve() for source in comparisons for run in run_folders_in(source))  # each run once
    report(list(runs), Path(out))


def run_and_report(grid: Plan, backend: Backend, out: Path, progress: bool,
                   factors: dict[str, Any] | None = None, schedule: Schedule | None = None) -> int:
    """Runs the grid's tasks (one per process unless ``schedule`` groups them), then writes OUT's
    report; the exit status (0, 1 or 130)."""
    schedule = schedule or schedule_jobs(grid.tasks, 1, out / "groups")
    print_plan(grid, schedule)
    try:
        outcomes = run_all(schedule.jobs, backend, progress=progress)
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume", file=sys.stderr)
        return 130
    failures = [outcome for outcome in outcomes if not outcome.ok]
    try:
        report(out / "runs", out, factors)
    except ValueError as error:
        print(f"no report: {error}", file=sys.stderr)
        return 1
    if failures:
        print(f"{len(failures)} of {len(outcomes)} runs failed (see error.log in their folders); "
              "run the same command again to retry them", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.report:
            if args.agents or args.variant or args.envs or args.config:
                raise ValueError("--report rebuilds a report only: give it without a grid")
            report_only(args.report, args.out)
            return 0
        fields = experiment_fields(args)
        backend = make_backend(fields)
        grid = plan(fields, args.set)
        schedule = schedule_jobs(grid.tasks, int(fields.get("seeds_per_process", 1)), Path(fields["out"]) / "groups")
    except ValueError as error:
        fail(str(error))
    except KeyboardInterrupt:
        print("\ninterrupted before any run started", file=sys.stderr)
        return 130
    return run_and_report(grid, backend, Path(fields["out"]), progress=not args.no_progress, schedule=schedule)


if __name__ == "__main__":
    sys.exit(main())
