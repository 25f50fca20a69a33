"""Seeds of one grid cell trained together in one process (``--seeds-per-process K``).

A cell (an agent or variant on one env, with its settings) whose agent has a multi-seed version
(``agents.multi_seed``: PPO, A2C, TRPO, DQN, SAC) and runs on a torch-native env
(``--set backend=torch``) trains its seeds in groups of up to K, each group as one batched run
in one process. Each seed still writes its ordinary run folder ``OUT/runs/<env>__<name>__seed<k>/``
(``config.json``, ``metrics.jsonl``, ``summary.json``, and ``agent.pt`` in place of a
checkpoint); the group's joint ``checkpoint.pt`` lives in ``OUT/groups/<env>__<name>__seeds<a>-<b>-...``,
from which any later command resumes the group, whatever its K.

Every seed of a grouped cell goes through the multi-seed path, a leftover seed as a group of one,
so a seed's results do not depend on K (seed k of any group computes bitwise the same at the same
torch thread count, ``--cpus-per-run``). They differ from a plain run of that seed by float
round-off: stacked matrix products round differently. A seed that already has a plain run's
``checkpoint.pt`` resumes as a plain run, so no work is lost. A cell that cannot be grouped runs
one seed per process, with the reason listed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agents.comparison.grid import RunTask
from agents.multi_seed import build_multi_seed
from agents.registry import agent_class
from agents.runner import CHECKPOINT
from envs import env_file_name


@dataclass(frozen=True)
class RunGroup:
    """Seeds of one cell in one process: their tasks (same settings but the seed) and the folder
    of their joint checkpoint."""

    tasks: tuple[RunTask, ...]
    run_dir: str

    @property
    def seeds(self) -> list[int]:
        return [task.seed for task in self.tasks]


Job = RunTask | RunGroup  # what a backend runs in one worker process


def job_tasks(job: Job) -> tuple[RunTask, ...]:
    return job.tasks if isinstance(job, RunGroup) else (job,)


def resumes(job: Job) -> bool:
    """Whether ``job`` continues from a checkpoint (its own, or its group's)."""
    return (Path(job.run_dir) / CHECKPOINT).is_file()


def group_name(task: RunTask, seeds: list[int]) -> str:
    return f"{env_file_name(task.env)}__{task.name}__seeds{'-'.join(map(str, seeds))}"


def why_not_grouped(task: RunTask) -> str | None:
    """None when the seeds of ``task``'s cell can train together, else the reason they cannot."""
    if task.settings.get("backend") != "torch":
        return "grouping runs on torch-native envs only: add --set backend=torch"
    agent_cls = agent_class(task.agent)
    config = agent_cls.config_class.from_dict(task.settings)
    try:
        spaces = agent_cls.from_env(task.env, **task.settings)
        build_multi_seed(agent_cls, config, spaces.observation_space, spaces.action_space, [task.seed])
    except ValueError as error:
        return str(error)
    return None


@dataclass(frozen=True)
class Schedule:
    """The jobs that run a grid's tasks, and the cells whose seeds run one per process."""

    jobs: list[Job]
    ungrouped: list[tuple[str, str, str]]  # (name, env, reason)

    @property
    def resumed(self) -> int:
        """How many runs continue from a checkpoint."""
        return sum(len(job_tasks(job)) for job in self.jobs if resumes(job))


def schedule_jobs(tasks: list[RunTask], seeds_per_process: int, groups_dir: str | Path) -> Schedule:
    """``tasks`` one per process (``seeds_per_process`` 1), or grouped by cell where they can be.

    Groups that already have a checkpoint in ``groups_dir`` (started by an earlier command, with
    any K) resume as they were, whatever ``seeds_per_process`` is now."""
    if seeds_per_process < 1:
        raise ValueError(f"--seeds-per-process must be at least 1, got {seeds_per_process}")
    cells: dict[tuple[str, str], list[RunTask]] = {}
    for task in tasks:
        cells.setdefault((task.name, task.env), []).append(task)
    jobs: list[Job] = []
    ungrouped = []
    groups_dir = Path(groups_dir).resolve()
    for (name, env), cell in cells.items():
        started = started_groups(cell, groups_dir)
        jobs += started
        taken = {task.seed for group in started for task in group.tasks}
        cell = [task for task in cell if task.seed not in taken]
        if seeds_per_process == 1 or not cell:
            jobs += cell
            continue
        reason = why_not_grouped(cell[0])
        if reason is not None:
            ungrouped.append((name, env, reason))
            jobs += cell
            continue
        plain = [task for task in cell if resumes(task)]  # started as plain runs: they go on as such
        jobs += plain
        rest = [task for task in cell if task not in plain]
        for start in range(0, len(rest), seeds_per_process):
            members = tuple(rest[start:start + seeds_per_process])
            jobs.append(RunGroup(members, str(groups_dir / group_name(members[0], [t.seed for t in members]))))
    return Schedule(jobs, ungrouped)


def started_groups(cell: list[RunTask], groups_dir: Path) -> list[RunGroup]:
    """The groups of ``cell``'s unfinished seeds that have a checkpoint in ``groups_dir``."""
    by_seed = {task.seed: task for task in cell}
    prefix = group_name(cell[0], [])
    groups = []
    for folder in sorted(groups_dir.glob(f"{prefix}*")):
        try:
            seeds = [int(seed) for seed in folder.name[len(prefix):].split("-")]
        except ValueError:
            continue
        if (folder / CHECKPOINT).is_file() and all(seed in by_seed for seed in seeds):
            groups.append(RunGroup(tuple(by_seed.pop(seed) for seed in seeds), str(folder)))
    return groups
