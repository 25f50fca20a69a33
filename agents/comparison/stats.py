"""Aggregate metrics over runs and tasks with stratified-bootstrap confidence intervals.

Definitions follow Agarwal et al. 2021, "Deep Reinforcement Learning at the Edge of the
Statistical Precipice" (NeurIPS), and its library rliable.

Scores of one agent are a sequence with one array per task (environment), ``[..., n_t]`` over
that task's runs (seeds); tasks may have different numbers of runs. Every metric below takes
such sequences with any leading batch dimensions and returns ``[...]``: the bootstrap evaluates
all its replicates in one call by giving each task's array a leading ``[reps]`` dimension.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

TaskScores = Sequence[np.ndarray]


def _check_tasks(*score_sets: TaskScores) -> None:
    for scores in score_sets:
        if len(scores) == 0:
            raise ValueError("scores hold no task")
        if any(np.shape(task)[-1] == 0 for task in scores):
            raise ValueError("every task needs at least one run")
    if len({len(scores) for scores in score_sets}) > 1:
        raise ValueError("score sets compared with each other must cover the same tasks")


def per_task_means(scores: TaskScores) -> np.ndarray:
    """[..., T]: each task's mean over its runs."""
    return np.stack([np.mean(task, axis=-1) for task in scores], axis=-1)


def trimmed_mean(values: np.ndarray, proportion: float = 0.25) -> np.ndarray:
    """Mean over the last axis after cutting ``int(proportion * n)`` values from each end of
    the sorted values: ``scipy.stats.trim_mean``'s rule, which rliable's IQM uses."""
    count = np.shape(values)[-1]
    cut = int(proportion * count)
    return np.mean(np.sort(values, axis=-1)[..., cut:count - cut], axis=-1)


def aggregate_iqm(scores: TaskScores) -> np.ndarray:
    """Interquartile mean: the 25%-trimmed mean of all runs of all tasks pooled (Sec. 4)."""
    _check_tasks(scores)
    return trimmed_mean(np.concatenate([np.asarray(task, dtype=np.float64) for task in scores],
                                       axis=-1))


def aggregate_mean(scores: TaskScores) -> np.ndarray:
    """Mean over tasks of each task's mean score."""
    _check_tasks(scores)
    return np.mean(per_task_means(scores), axis=-1)


def aggregate_median(scores: TaskScores) -> np.ndarray:
    """Median over tasks of each task's mean score."""
    _check_tasks(scores)
    return np.median(per_task_means(scores), axis=-1)


def optimality_gap(scores: TaskScores, gamma: float = 1.0) -> np.ndarray:
    """How far the scores fall short of ``gamma`` with scores above ``gamma`` counted as
    ``gamma`` (Sec. 4): ``gamma - mean_t mean_i min(x_ti, gamma)``. Lower is better."""
    _check_tasks(scores)
    return gamma - aggregate_mean([np.minimum(task, gamma) for task in scores])


AGGREGATE_METRICS: dict[str, Callable[[TaskScores], np.ndarray]] = {
    "iqm": aggregate_iqm,
    "mean": aggregate_mean,
    "median": aggregate_median,
    "optimality_gap": optimality_gap,
}
METRIC_TITLES = {"iqm": "IQM", "mean": "Mean", "median": "Median",
                 "optimality_gap": "Optimality gap (lower is better)"}


def probability_of_improvement(x: TaskScores, y: TaskScores) -> np.ndarray:
    """P(X > Y): the probability that a run of X on a task scores above a run of Y on the same
    task, averaged over tasks (Sec. 4, "Probability of improvement"). Per task it is the
    Mann-Whitney U statistic over all N*M pairs, a tie counting 1/2."""
    _check_tasks(x, y)
    per_task = []
    for x_task, y_task in zip(x, y):
        x_task, y_task = np.asarray(x_task)[..., :, None], np.asarray(y_task)[..., None, :]
        wins = (x_task > y_task) + 0.5 * (x_task == y_task)
        per_task.append(np.mean(wins, axis=(-2, -1)))
    return np.mean(np.stack(per_task, axis=-1), axis=-1)


def performance_profile(scores: TaskScores, taus: np.ndarray) -> np.ndarray:
    """[..., K]: the fraction of runs scoring strictly above each threshold tau (Sec. 4, the
    run-score distribution), each task weighing the same; with equal runs per task this is the
    fraction of all runs, as in rliable."""
    _check_tasks(scores)
    taus = np.asarray(taus, dtype=np.float64)
    fractions = [np.mean(np.asarray(task)[..., :, None] > taus, axis=-2) for task in scores]
    return np.mean(np.stack(fractions, axis=-1), axis=-1)


def stratified_resample(scores: TaskScores, reps: int,
                        rng: np.random.Generator) -> list[np.ndarray]:
    """Stratified bootstrap replicates: for each task, ``reps`` draws with replacement of as many
    runs as the task has, from that task's runs only (rliable's StratifiedBootstrap).

    Task ``t`` of shape ``[..., n_t]`` becomes ``[reps, ..., n_t]``; the indices come from one
    ``rng.integers(0, n_t, size=(reps, n_t))`` call per task, in task order.
    """
    replicates = []
    for task in scores:
        task = np.asarray(task, dtype=np.float64)
        count = task.shape[-1]
        indices = rng.integers(0, count, size=(reps, count))
        replicates.append(np.moveaxis(np.take(task, indices, axis=-1), -2, 0))
    return replicates


@dataclass(frozen=True)
class Interval:
    """A point estimate and its bootstrap confidence interval (arrays of the statistic's shape)."""

    point: np.ndarray
    low: np.ndarray
    high: np.ndarray


def bootstrap_interval(statistic: Callable[..., np.ndarray], *score_sets: TaskScores,
                       rng: np.random.Generator, reps: int = 2000,
                       confidence: float = 0.95) -> Interval:
    """``statistic(*score_sets)`` with a percentile bootstrap confidence interval.

    Each score set (an agent's runs) is resampled independently, stratified by task: the
    stratified bootstrap for one agent, rliable's StratifiedIndependentBootstrap for a pair.
    The bounds are the ``(1 -+ confidence) / 2`` quantiles of the replicates (numpy's linear
    interpolation between order statistics).
    """
    if reps < 1:
        raise ValueError(f"reps must be at least 1, got {reps}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    point = np.asarray(statistic(*score_sets), dtype=np.float64)
    replicates = statistic(*(stratified_resample(scores, reps, rng) for scores in score_sets))
    alpha = 1.0 - confidence
    low, high = np.quantile(replicates, [alpha / 2, 1.0 - alpha / 2], axis=0)
    return Interval(point=point, low=low, high=high)
