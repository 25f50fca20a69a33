"""Running the tasks of a grid: the worker function every backend calls, and the driver loop.

``execute_run`` is what a worker process (local pool or Ray) does for one task: resume from the
run folder's ``checkpoint.pt`` when there is one, else build the agent fresh; train through the
ordinary ``Runner`` with its progress bar off; a variant's name then goes into the run's
``config.json`` (after the run: the Runner writes that file afresh at every start and resume).
``execute_group`` does the same for the seeds of a ``RunGroup``, trained together as one
multi-seed agent, from or into the group's joint checkpoint. A failing run never raises out of
them: the error comes back as a one-line message (with the traceback in ``RUN_DIR/error.log``) so
the other runs go on. ``run_all`` consumes any backend's stream of outcomes, printing one line
per run under an overall progress bar.
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
from agents.comparison.grouping import Job, RunGroup, job_tasks
from agents.comparison.runs import ERROR_LOG
from agents.config import CHANGEABLE_ON_RESUME
from agents.comparison.variants import record_variant
from agents.multi_seed import build_multi_seed
from agents.registry import agent_class
from agents.runner import CHECKPOINT, Runner

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
    def run(self, jobs: list[Job]) -> Iterator[RunOutcome]:
        """Runs every job once, yielding each run's outcome as soon as it is known."""
        ...


def _build_runner(task: RunTask, run_dir: Path, group: RunGroup | None = None) -> Runner:
    """The Runner of ``task``, or of ``group`` (``task`` its first seed) with its seeds' folders."""
    seed_dirs = [member.run_dir for member in group.tasks] if group is not None else None
    checkpoint = run_dir / CHECKPOINT
    if checkpoint.is_file():
        # The checkpoint's settings win (they made the run so far, and the grid checked they are the
        # task's); what a resume may change comes from the task, as train.py --resume takes it.
        payload = load_checkpoint(checkpoint, AGENT_FORMAT)
        if group is not None and payload.get("seeds") != group.seeds:
            raise ValueError(f"{checkpoint} holds seeds {payload.get('seeds')}, not {group.seeds}")
        agent = Agent.from_payload(payload, device=task.settings["device"])
        for name in CHANGEABLE_ON_RESUME:
            setattr(agent.config, name, task.settings[name])
        agent.config.validate()
        return Runner(agent, run_dir=run_dir, progress=False, resume=payload, seed_dirs=seed_dirs)
    agent_cls = agent_class(task.agent)
    agent = agent_cls.from_env(task.env, **task.settings)
    if group is not None:
        agent = build_multi_seed(agent_cls, agent.config, agent.observation_space, agent.action_space, group.seeds)
    return Runner(agent, run_dir=run_dir, progress=False, seed_dirs=seed_dirs)


def execute_job(job: Job) -> list[RunOutcome]:
    """Trains a task, or a group's seeds together, to the end in this process (a worker);
    never raises for a failed run."""
    return execute_group(job) if isinstance(job, RunGroup) else [execute_run(job)]


def execute_run(task: RunTask) -> RunOutcome:
    """Trains one task to its end in this process (a worker); never raises for a failed run."""
    return _execute((task,), task.run_dir)[0]


def execute_group(group: RunGroup) -> list[RunOutcome]:
    """Trains the seeds of ``group`` as one multi-seed run; one outcome per seed."""
    return _execute(group.tasks, group.run_dir, group)


def _execute(members: tuple[RunTask, ...], run_dir: str, group: RunGroup | None = None) -> list[RunOutcome]:
    torch.set_num_threads(max(1, members[0].settings["torch_threads"]))
    run_dir = Path(run_dir)
    resumed = (run_dir / CHECKPOINT).is_file()
    try:
        summaries = _build_runner(members[0], run_dir, group).run_seeds()
        for member in members:
            if member.variant is not None:
                record_variant(Path(member.run_dir), member.variant)
    except Exception as error:  # any failure of this run is reported; the grid goes on
        message = " ".join(f"{type(error).__name__}: {error}".split())
        for member in members:
            Path(member.run_dir).mkdir(parents=True, exist_ok=True)
            (Path(member.run_dir) / ERROR_LOG).write_text(traceback.format_exc())
        return [RunOutcome(member, None, message, resumed) for member in members]
    outcomes = []
    for member, summary in zip(members, summaries, strict=True):
        member_dir = Path(member.run_dir)
        (member_dir / ERROR_LOG).unlink(missing_ok=True)
        files = {name: (member_dir / name).read_text() for name in RETURNED_FILES} if member.return_files else {}
        outcomes.append(RunOutcome(member, summary, None, resumed, files))
    return outcomes


def failed(job: Job, message: str) -> list[RunOutcome]:
    """The outcomes of a job whose worker died before it could report."""
    return [RunOutcome(task, None, message) for task in job_tasks(job)]


def describe(outcome: RunOutcome) -> str:
    """One line: agent, env, seed, final evaluation return and wall time, or the error."""
    if not outcome.ok:
        return f"{outcome.task.label}: FAILED {outcome.error}"
    summary = outcome.summary
    resumed = ", resumed" if outcome.resumed else ""
    return (f"{outcome.task.label}: eval return {summary['eval_return_mean']:.2f} "
            f"± {summary['eval_return_std']:.2f} after {summary['steps']} steps "
            f"({summary['wall_time_s']:.1f} s{resumed})")


def run_all(jobs: list[Job], backend: Backend, progress: bool = True) -> list[RunOutcome]:
    """Runs ``jobs`` on ``backend``, one printed line per finished run and a bar with the ETA."""
    outcomes = []
    runs = sum(len(job_tasks(job)) for job in jobs)
    with tqdm(total=runs, unit="run", desc="runs", disable=not (progress and jobs), dynamic_ncols=True) as bar:
        for outcome in backend.run(jobs):
            outcomes.append(outcome)
            tqdm.write(describe(outcome))
            bar.update(1)
    return outcomes


def write_returned_files(outcome: RunOutcome) -> None:
    """Writes a run's returned files on this machine unless its run folder already holds the
    returned summary (on shared storage the worker wrote them there): a worker on another node
    without shared storage, also one that took an earlier, shorter run of the folder further."""
    run_dir = Path(outcome.task.run_dir)
    summary = run_dir / "summary.json"
    if outcome.files and not (summary.is_file() and summary.read_text() == outcome.files["summary.json"]):
        run_dir.mkdir(parents=True, exist_ok=True)
        for name in RETURNED_FILES:  # summary.json last: it marks the run finished
            (run_dir / name).write_text(outcome.files[name])
