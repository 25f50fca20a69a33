"""Run folders on disk -> tidy arrays: final returns per seed and evaluation learning curves,
and the list of runs that have none.

A run is a folder ``runs/<name>/`` holding ``config.json`` (``agent``, ``env``, ``seed``, and
``variant`` for a run of a named variant: the report's column, in place of ``agent``),
``metrics.jsonl`` (one JSON object per logging step with ``step``, ``time`` and metric names)
and ``summary.json`` (the final evaluation). A run counts as finished once ``summary.json``
exists. A folder without one (failed, stopped or still running) and a run whose evaluation
return is not finite are left out of the numbers and listed with the reason (``LeftOutRun``),
so a comparison never silently rests on fewer seeds than were run. A multi-seed run of
``train.py --num-seeds`` counts as its ``seed_S`` folders, one run each.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agents.runner import CHECKPOINT, JOINT_RUN, SUMMARY

EVAL_METRIC = "eval/return_mean"
VARIANT_KEY = "variant"  # config.json key naming a run's variant (agents.comparison.variants)
ERROR_LOG = "error.log"  # a failed run's traceback (agents.comparison.execution writes it)
_SUMMARY_KEYS = ("env", "agent", "seed", "steps", "eval_return_mean", "eval_return_std",
                 "wall_time_s", "sps")

RunKey = tuple[str, str]  # (agent, env)


@dataclass(frozen=True)
class Run:
    """One finished run: its identity, final evaluation and evaluation learning curve."""

    name: str
    agent: str                  # the report's column: the variant's name, else the agent's
    env: str
    seed: int
    steps: int
    final_return: float         # summary.json's eval_return_mean
    final_return_std: float     # spread over the final evaluation's episodes
    wall_time_s: float
    sps: float
    curve_steps: np.ndarray     # [P] increasing env steps of the evaluations
    curve_returns: np.ndarray   # [P] evaluation return at those steps


@dataclass(frozen=True)
class LeftOutRun:
    """A run folder with no result in the comparison, and why; identity from its config.json,
    None where the folder has none."""

    name: str
    agent: str | None
    env: str | None
    seed: int | None
    reason: str


class RunLeftOut(ValueError):
    """A finished run whose result cannot enter the statistics; ``reason`` says why."""

    def __init__(self, run_dir: Path, reason: str):
        super().__init__(f"run {run_dir}: {reason}")
        self.reason = reason


def _read_json(path: Path) -> dict:
    try:
        with path.open() as file:
            return json.load(file)
    except FileNotFoundError:
        raise ValueError(f"missing {path}") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None


def read_curve(metrics_path: Path, metric: str = EVAL_METRIC) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of ``metric`` in a metrics.jsonl, sorted by step; a repeated step keeps
    its last value (a resumed run logs the steps after its checkpoint again)."""
    by_step: dict[int, float] = {}
    try:
        lines = metrics_path.read_text().splitlines()
    except FileNotFoundError:
        raise ValueError(f"missing {metrics_path}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{metrics_path}:{number} is not valid JSON: {error}") from None
        if metric in record:
            if "step" not in record:
                raise ValueError(f"{metrics_path}:{number} has '{metric}' but no 'step'")
            by_step[int(record["step"])] = float(record[metric])
    steps = np.array(sorted(by_step), dtype=np.int64)
    return steps, np.array([by_step[s] for s in steps.tolist()], dtype=np.float64)


def load_run(run_dir: str | Path, metric: str = EVAL_METRIC) -> Run:
    """Reads one finished run. For the evaluation metric, the final evaluation of summary.json
    closes the learning curve when metrics.jsonl has no evaluation at (or after) the run's last
    step. Raises ``RunLeftOut`` for a run that diverged or never logged ``metric``."""
    run_dir = Path(run_dir)
    config = _read_json(run_dir / "config.json")
    summary = _read_json(run_dir / SUMMARY)
    missing = [key for key in ("agent", "env", "seed") if key not in config]
    missing += [key for key in _SUMMARY_KEYS if key not in summary]
    if missing:
        raise ValueError(f"run {run_dir} lacks {', '.join(missing)} in config.json/summary.json")
    for key in ("agent", "env", "seed"):
        if str(config[key]) != str(summary[key]):
            raise ValueError(f"run {run_dir}: config.json and summary.json disagree on '{key}'")
    steps, returns = read_curve(run_dir / "metrics.jsonl", metric)
    final_step, final_return = int(summary["steps"]), float(summary["eval_return_mean"])
    label = "evaluation return" if metric == EVAL_METRIC else f"'{metric}'"
    if not np.isfinite(final_return):
        raise RunLeftOut(run_dir, "diverged: non-finite evaluation return")
    if not np.isfinite(returns).all():
        raise RunLeftOut(run_dir, f"diverged: non-finite {label}")
    if metric == EVAL_METRIC and (steps.size == 0 or steps[-1] < final_step):
        steps = np.append(steps, final_step)
        returns = np.append(returns, final_return)
    if steps.size == 0:
        raise RunLeftOut(run_dir, f"no {label} in metrics.jsonl")
    return Run(name=run_label(run_dir), agent=str(config.get(VARIANT_KEY, config["agent"])),
               env=str(config["env"]), seed=int(config["seed"]), steps=final_step, final_return=final_return,
               final_return_std=float(summary["eval_return_std"]),
               wall_time_s=float(summary["wall_time_s"]), sps=float(summary["sps"]),
               curve_steps=steps, curve_returns=returns)


def _error_line(log: str) -> str:
    """The line of an error.log that names the error: the last of a Python traceback (its first
    is only "Traceback (most recent call last):"), else the first."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    if not lines:
        return ""
    return lines[-1] if lines[0].startswith("Traceback") else lines[0]


def _why_unfinished(run_dir: Path) -> str:
    """Why a run folder has no summary.json: its error, a checkpoint to resume from, or neither."""
    if (run_dir / ERROR_LOG).is_file():
        line = _error_line((run_dir / ERROR_LOG).read_text(errors="replace"))
        return f"failed: {line}" if line else "failed"
    if (run_dir / CHECKPOINT).is_file():
        return f"unfinished (resume it: the compare.py command that made it, or train.py --resume {run_dir})"
    joint = _joint_run_dir(run_dir)
    if (joint / CHECKPOINT).is_file():
        if joint.resolve() == run_dir.parent.resolve():  # a seed of a train.py --num-seeds run
            return f"unfinished (resume it: train.py --resume {run_dir.parent})"
        return "unfinished (resume it: the compare.py command that made it)"  # a seed of a compare.py group
    return "no result"


def _joint_run_dir(run_dir: Path) -> Path:
    """The folder of the multi-seed run a seed's folder belongs to (``Runner``'s ``JOINT_RUN``),
    or the folder itself."""
    try:
        return run_dir / _read_json(run_dir / JOINT_RUN)["run_dir"]
    except (ValueError, KeyError, TypeError):
        return run_dir


def _left_out(run_dir: Path, reason: str) -> LeftOutRun:
    try:
        config = _read_json(run_dir / "config.json")
    except ValueError:  # a run that failed before writing its config
        config = {}
    agent = config.get(VARIANT_KEY, config.get("agent"))
    seed = config.get("seed")
    return LeftOutRun(name=run_label(run_dir), agent=None if agent is None else str(agent),
                      env=None if config.get("env") is None else str(config["env"]),
                      seed=None if seed is None else int(seed), reason=reason)


def run_label(run_dir: Path) -> str:
    """A run's name in reports: its folder's, with its multi-seed run's for a ``seed_S`` folder."""
    return f"{run_dir.parent.name}/{run_dir.name}" if run_dir.name.startswith("seed_") else run_dir.name


def runs_of_one_run(path: Path) -> list[Path] | None:
    """``[path]`` when it holds a run's ``config.json``, a multi-seed run's ``seed_S`` folders,
    else None: a folder a report must not write into."""
    if (path / "config.json").is_file():
        return [path]
    seeds = sorted(seed_dir for seed_dir in path.glob("seed_*") if (seed_dir / "config.json").is_file())
    return seeds or None


def run_folders_in(folder: Path) -> list[Path]:
    """The run folders ``folder`` stands for: itself or its seeds' folders (``runs_of_one_run``),
    or else every folder in it, each read the same way (a folder of neither kind stays, to be
    listed as having no result)."""
    runs = runs_of_one_run(folder)
    if runs is not None:
        return runs
    return [run for child in sorted(folder.iterdir()) if child.is_dir() for run in runs_of_one_run(child) or [child]]


def read_run_folders(source: str | Path | Iterable[str | Path], metric: str = EVAL_METRIC
                     ) -> tuple[list[Run], list[LeftOutRun]]:
    """The runs of a folder (``run_folders_in``) or of an explicit list of run folders:
    (finished runs, the others with the reason each is left out).

    Finished runs are sorted by (agent, env, seed, name) and the others by (env, agent, seed,
    name), so that every statistic drawn from them is independent of the order the file system
    lists them in.
    """
    if isinstance(source, (str, Path)):
        root = Path(source)
        if not root.is_dir():
            raise ValueError(f"runs folder {root} does not exist")
        run_dirs = run_folders_in(root)
    else:
        run_dirs = [Path(path) for path in source]
    runs, left_out = [], []
    for run_dir in run_dirs:
        if not (run_dir / SUMMARY).is_file():
            left_out.append(_left_out(run_dir, _why_unfinished(run_dir)))
            continue
        try:
            runs.append(load_run(run_dir, metric))
        except RunLeftOut as error:
            left_out.append(_left_out(run_dir, error.reason))
    if not runs:
        reasons = "; ".join(sorted({item.reason for item in left_out}))
        raise ValueError(f"no finished runs (folders with summary.json) to compare in {source}"
                         + (f": {reasons}" if reasons else ""))
    runs.sort(key=lambda run: (run.agent, run.env, run.seed, run.name))
    left_out.sort(key=lambda item: (item.env or "", item.agent or "",
                                    -1 if item.seed is None else item.seed, item.name))
    seen: dict[tuple[str, str, int], str] = {}
    for run in runs:
        previous = seen.setdefault((run.agent, run.env, run.seed), run.name)
        if previous != run.name:
            raise ValueError(f"runs {previous} and {run.name} are both {run.agent} on {run.env} "
                             f"with seed {run.seed}: name the run folders to compare (compare.py --report "
                             f"RUN_DIR... --out DIR)")
    return runs, left_out


def load_runs(source: str | Path | Iterable[str | Path], metric: str = EVAL_METRIC) -> list[Run]:
    """The finished runs of ``read_run_folders``."""
    return read_run_folders(source, metric)[0]


def group_runs(runs: Sequence[Run]) -> dict[RunKey, list[Run]]:
    """Runs per (agent, env), keys and seeds in sorted order."""
    groups: dict[RunKey, list[Run]] = {}
    for run in sorted(runs, key=lambda run: (run.agent, run.env, run.seed)):
        groups.setdefault((run.agent, run.env), []).append(run)
    return groups


def final_returns(runs: Sequence[Run]) -> dict[RunKey, np.ndarray]:
    """Per (agent, env): final evaluation return over seeds, [num_seeds]."""
    return {key: np.array([run.final_return for run in group])
            for key, group in group_runs(runs).items()}


def normalized_auc(steps: np.ndarray, values: np.ndarray) -> float:
    """Area under a learning curve (trapezoid rule) divided by its step range: the curve's
    average return over training, in return units. A one-point curve is its value."""
    steps = np.asarray(steps, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if steps.size == 0:
        raise ValueError("the learning curve has no points")
    if steps.size == 1:
        return float(values[0])
    area = np.sum((steps[1:] - steps[:-1]) * (values[1:] + values[:-1]) / 2.0)
    return float(area / (steps[-1] - steps[0]))


def shared_step_range(runs: Sequence[Run]) -> tuple[float, float] | None:
    """The steps every run has evaluated, (latest first evaluation, earliest last one); None when
    the runs share no step."""
    start = max(float(run.curve_steps[0]) for run in runs)
    stop = min(float(run.curve_steps[-1]) for run in runs)
    return (start, stop) if start <= stop else None


def common_grid_curves(runs: Sequence[Run], num_points: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Learning curves of several runs linearly interpolated onto one step grid.

    The grid spans the steps every run has evaluated (``shared_step_range``), so no curve is
    extrapolated. It holds ``num_points`` evenly spaced steps and every evaluation step of the
    runs inside that span, so the trapezoid rule on it (``normalized_auc``) gives each
    piecewise-linear curve's exact area. Runs evaluated only at one shared step give a grid of
    that one step. Returns (grid [G], returns [num_runs, G]).
    """
    if num_points < 2:
        raise ValueError(f"num_points must be at least 2, got {num_points}")
    span = shared_step_range(runs)
    if span is None:
        raise ValueError(f"the learning curves of {runs[0].agent} on {runs[0].env} share no steps")
    start, stop = span
    if stop > start:
        evaluated = np.concatenate([run.curve_steps for run in runs]).astype(np.float64)
        inside = evaluated[(evaluated >= start) & (evaluated <= stop)]
        grid = np.union1d(np.linspace(start, stop, num_points), inside)
    else:
        grid = np.array([start])  # evaluated once: a point
    return grid, np.stack([np.interp(grid, run.curve_steps, run.curve_returns) for run in runs])


def learning_curves(runs: Sequence[Run], num_points: int = 100
                    ) -> dict[RunKey, tuple[np.ndarray, np.ndarray]]:
    """Per (agent, env): (grid [G], returns [num_seeds, G]) on the seeds' common step grid."""
    return {key: common_grid_curves(group, num_points) for key, group in group_runs(runs).items()}
