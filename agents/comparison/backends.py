"""Where the runs of a grid execute: a local process pool, or Ray tasks on a cluster.

Both call ``execute_job`` once per job (a task, or a group of seeds trained together) and yield
outcomes as runs finish. A run's own failure comes back as an outcome; a worker that dies
(killed, out of memory, a crash in native code) is handled by the backend: its runs are started
again, resuming from their last checkpoint.

Ray and storage: every task writes its run folder under the same absolute ``OUT/runs`` path on
the node it runs on. With ``OUT`` on storage every node shares (NFS, a cluster file system) that
is all, and unfinished runs resume on any node. Without shared storage each task also sends its
config.json, metrics.jsonl and summary.json back and the driver writes them into its own
``OUT/runs``, so the report is complete; checkpoints then stay on the worker nodes, and
resuming a run needs it to land on the same node again (or shared storage).
"""
from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import signal
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from agents.comparison.execution import RunOutcome, execute_job, failed, write_returned_files
from agents.comparison.grouping import Job
from agents.interrupts import StopRequest, ignore_stop_signals, stop_signals_ignored

RunFunction = Callable[[Job], list[RunOutcome]]

# Seconds between two looks at a stop request while jobs run (and between two SIGTERMs to the
# workers once one came).
STOP_POLL_S = 0.5


def worker_context() -> multiprocessing.context.BaseContext:
    """Workers forked from a fork server that has imported torch and the agents once, so no
    worker pays the seconds of imports and a pool rebuilt after a worker died starts at once.
    A forked child inherits no torch threads or open files: the fork server never ran any.
    ``torch._dynamo`` is preloaded too because the first optimiser step imports it (about 2 s
    per process). ``spawn`` where there is no fork server (Windows).

    The fork server starts here ignoring SIGINT and SIGTERM, as its workers do between jobs: a
    Ctrl-C during its seconds of imports would kill it."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["agents.comparison.execution", "torch._dynamo"])
    with stop_signals_ignored():
        multiprocessing.forkserver.ensure_running()
    return context


class LocalBackend:
    """``workers`` processes, each training one job at a time.

    A dead worker breaks a ``ProcessPoolExecutor`` and fails every future in it, so at most
    ``workers`` jobs are submitted at a time (all of them running), and after a break the jobs
    that were in flight go to a fresh pool; a job in flight at ``max_worker_deaths`` breaks is
    reported failed rather than retried forever.

    Ctrl-C or SIGTERM: no job starts any more, and the workers are sent SIGTERM until their jobs
    return, each run stopping at a checkpoint after its step under way (``agents.interrupts``;
    between jobs the workers ignore both signals); then ``KeyboardInterrupt`` is raised. A second
    Ctrl-C raises it at once.
    """

    def __init__(self, workers: int, run_fn: RunFunction = execute_job, max_worker_deaths: int = 2):
        if workers < 1:
            raise ValueError(f"--workers must be at least 1, got {workers}")
        self.workers = workers
        self.run_fn = run_fn
        self.max_worker_deaths = max_worker_deaths

    def run(self, jobs: list[Job]) -> Iterator[RunOutcome]:
        pending = deque(jobs)
        deaths: Counter[str] = Counter()
        while pending:
            yield from self._run_pool(pending, deaths)

    def _run_pool(self, pending: deque[Job], deaths: Counter[str]) -> Iterator[RunOutcome]:
        """Runs jobs of ``pending`` in one pool until none are left or a worker dies."""
        width = min(self.workers, len(pending))
        pool = ProcessPoolExecutor(max_workers=width, mp_context=worker_context(), initializer=ignore_stop_signals)
        in_flight: dict[Future, Job] = {}
        broken = False
        try:
            with StopRequest() as stop:
                while in_flight or (pending and not broken and not stop.requested):
                    while pending and not broken and not stop.requested and len(in_flight) < width:
                        job = pending.popleft()
                        try:
                            in_flight[pool.submit(self.run_fn, job)] = job
                        except BrokenProcessPool:
                            pending.appendleft(job)
                            broken = True
                    if stop.requested:
                        _ask_workers_to_stop()
                    done, _ = wait(in_flight, timeout=STOP_POLL_S, return_when=FIRST_COMPLETED)
                    for future in done:
                        job = in_flight.pop(future)
                        if isinstance(future.exception(), BrokenProcessPool):
                            broken = True
                            yield from self._after_worker_death(job, pending, deaths)
                        elif not isinstance(future.exception(), KeyboardInterrupt):  # else: stopped
                            yield from _result(future, job)
                if stop.requested:
                    raise KeyboardInterrupt
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _after_worker_death(self, job: Job, pending: deque[Job], deaths: Counter[str]) -> list[RunOutcome]:
        """Puts ``job`` back at the front of ``pending`` (no outcome yet), or fails it after too
        many deaths."""
        deaths[job.run_dir] += 1
        if deaths[job.run_dir] >= self.max_worker_deaths:
            attempts = f"{deaths[job.run_dir]} of {self.max_worker_deaths} attempts"
            return failed(job, f"its worker process died ({attempts})")
        pending.appendleft(job)
        return []


def _ask_workers_to_stop() -> None:
    """SIGTERM to this process's pool workers (its only child processes)."""
    for worker in multiprocessing.active_children():
        os.kill(worker.pid, signal.SIGTERM)


def _result(future: Future, job: Job) -> list[RunOutcome]:
    try:
        return future.result()
    except Exception as error:  # e.g. the outcome could not be sent back
        return failed(job, f"{type(error).__name__}: {error}")


class RayBackend:
    """One Ray task per job, each asking for ``cpus_per_run`` CPUs and ``gpus_per_run`` GPUs.

    Connects to ``address`` (``auto``: the cluster this machine belongs to; ``HOST:PORT``), or
    starts a local instance when ``address`` is None and Ray is not initialised yet. Ray
    retries a task whose worker died ``max_retries`` times; the retry resumes from the run's
    checkpoint.
    """

    def __init__(self, address: str | None = None, cpus_per_run: float = 1.0, gpus_per_run: float = 0.0,
                 run_fn: RunFunction = execute_job, max_retries: int = 1):
        if cpus_per_run <= 0 or gpus_per_run < 0:
            raise ValueError(f"--cpus-per-run must be > 0 and --gpus-per-run >= 0, got {cpus_per_run}, {gpus_per_run}")
        try:
            import ray
        except ImportError:
            raise ValueError("the ray backend needs Ray: pip install 'ray[default]'") from None
        self.ray = ray
        self.address = address
        self.cpus_per_run = cpus_per_run
        self.gpus_per_run = gpus_per_run
        self.run_fn = run_fn
        self.max_retries = max_retries

    def run(self, jobs: list[Job]) -> Iterator[RunOutcome]:
        ray = self.ray
        if not ray.is_initialized():
            ray.init(address=self.address)
        remote = ray.remote(num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run,
                            max_retries=self.max_retries)(self.run_fn)
        refs = {remote.remote(job): job for job in jobs}
        try:
            while refs:
                (ref,), _ = ray.wait(list(refs), num_returns=1)
                job = refs.pop(ref)
                try:
                    outcomes = ray.get(ref)
                except ray.exceptions.RayError as error:
                    outcomes = failed(job, f"{type(error).__name__}: {str(error).splitlines()[0]}")
                for outcome in outcomes:
                    write_returned_files(outcome)
                    yield outcome
        finally:
            for ref in refs:
                ray.cancel(ref)
