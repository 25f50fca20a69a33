"""Running the tasks of a grid: the worker function every backend calls, and the driver loop.

``execute_run`` is what a worker process (local pool or Ray) does for one task: resume from the
run folder's ``checkpoint.pt`` when there is one, else build the agent fresh; train through the
ordinary ``Runner`` with its progress bar off; a variant's name then goes into the run's
``config.json`` (after the run: the Runner writes that file afresh at every start and resume).
A failing run never raises out of it: the error comes back as a one-line message (with the
traceback in ``RUN_DIR/error.log``) so the other runs go on. ``run_all`` consumes any
backend's stream of outcomes, printing one line per run under an overall progress bar.
"""
from __future__ import annotations

import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm import tqdm

from agents.base import AGENT_FORMAT, Agent
from agents.checkpoint import load_checkpoint
from agents.comparison.grid import RunTask
from agents.comparison.variants import record_variant
from agents.registry import agent_class
from agents.runner import CHECKPOINT, Runner

ERROR_LOG = "error.log"
RETURNED_FILES = ("config.json", "metrics.jsonl", "summary.json")


@dataclass(frozen=True)
class RunOutcome:
    """What came of one task; ``summary`` is the Runner's summary, or None when it failed."""

    task: RunTask
    summary: dict[str, Any] | None
    error: str | None = None
    resumed: bool = False
    files: dict[str, str] = field(default_factory=dict)  # RETURNED_FILES' text, when asked for

    @property
    def ok(self) -> bool:
        return self.summary is not None


class Backend(Protocol):
    def run(self, tasks: list[RunTask]) -> Iterator[RunOutcome]:
        """Runs every task once, yielding each outcome as soon as it is known."""
        ...


def _build_runner(task: RunTask, run_dir: Path) -> Runner:
    checkpoint = run_dir / CHECKPOINT
    if checkpoint.is_file():
        # The checkpoint's settings win (they made the run so far); only the budget may grow.
        payload = load_checkpoint(checkpoint, AGENT_FORMAT)
        agent = Agent.from_payload(payload)
        agent.config.steps = task.settings["steps"]
        agent.config.validate()
        return Runner(agent, run_dir=run_dir, progress=False, resume=payload)
    agent = agent_class(task.agent).from_env(task.env, **task.settings)
    return Runner(agent, run_dir=run_dir, progress=False)


def execute_run(task: RunTask) -> RunOutcome:
    """Trains one task to its end in this process (a worker); never raises for a failed run."""
    torch.set_num_threads(max(1, task.settings["torch_threads"]))
    run_dir = Path(task.run_dir)
    resumed = (run_dir / CHECKPOINT).is_file()
    try:
        summary = _build_runner(task, run_dir).run()
        if task.variant is not None:
            record_variant(run_dir, task.variant)
    except Exception as error:  # any failure of this run is reported; the grid goes on
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / ERROR_LOG).write_text(traceback.format_exc())
        message = " ".join(f"{type(error).__name__}: {error}".split())
        return RunOutcome(task, None, message, resumed)
    (run_dir / ERROR_LOG).unlink(missing_ok=True)
    files = {name: (run_dir / name).read_text() for name in RETURNED_FILES} if task.return_files else {}
    return RunOutcome(task, summary, None, resumed, files)


def failed(task: RunTask, message: str) -> RunOutcome:
    """The outcome of a task whose worker died before it could report."""
    return RunOutcome(task, None, message)


def describe(outcome: RunOutcome) -> str:
    """One line: agent, env, seed, final evaluation return and wall time, or the error."""
    if not outcome.ok:
        return f"{outcome.task.label}: FAILED {outcome.error}"
    summary = outcome.summary
    resumed = ", resumed" if outcome.resumed else ""
    return (f"{outcome.task.label}: eval return {summary['eval_return_mean']:.2f} "
            f"± {summary['eval_return_std']:.2f} after {summary['steps']} steps "
            f"({summary['wall_time_s']:.1f} s{resumed})")


def run_all(tasks: list[RunTask], backend: Backend, progress: bool = True) -> list[RunOutcome]:
    """Runs ``tasks`` on ``backend``, one printed line per finished run and a bar with the ETA."""
    outcomes = []
    with tqdm(total=len(tasks), unit="run", desc="runs", disable=not (progress and tasks), dynamic_ncols=True) as bar:
        for outcome in backend.run(tasks):
            outcomes.append(outcome)
            tqdm.write(describe(outcome))
            bar.update(1)
    return outcomes


def write_returned_files(outcome: RunOutcome) -> None:
    """Writes a run's returned files on this machine when its run folder lacks them (a worker
    on another node without shared storage); on shared storage they are already there."""
    run_dir = Path(outcome.task.run_dir)
    if outcome.files and not (run_dir / "summary.json").is_file():
        run_dir.mkdir(parents=True, exist_ok=True)
        for name in RETURNED_FILES:  # summary.json last: it marks the run finished
            (run_dir / name).write_text(outcome.files[name])
