"""Aggregate metrics and the stratified bootstrap against brute-force loop references."""
from __future__ import annotations

import math

import numpy as np
import pytest

from agents.comparison.stats import (aggregate_iqm, aggregate_mean, aggregate_median,
                                     bootstrap_interval, optimality_gap, performance_profile,
                                     probability_of_improvement, stratified_resample,
                                     trimmed_mean)


def brute_iqm(values: list[float]) -> float:
    """scipy.stats.trim_mean(values, 0.25): drop int(n / 4) values at each end when sorted."""
    ordered = sorted(values)
    cut = int(0.25 * len(ordered))
    kept = ordered[cut:len(ordered) - cut]
    return sum(kept) / len(kept)


def brute_quantile(values: list[float], q: float) -> float:
    """numpy's default (linear) quantile, by hand."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (position - below) * (ordered[above] - ordered[below])


def brute_improvement(x_tasks: list[list[float]], y_tasks: list[list[float]]) -> float:
    per_task = []
    for xs, ys in zip(x_tasks, y_tasks):
        total = 0.0
        for x in xs:
            for y in ys:
                total += 1.0 if x > y else 0.5 if x == y else 0.0
        per_task.append(total / (len(xs) * len(ys)))
    return sum(per_task) / len(per_task)


def test_iqm_hand_values():
    assert aggregate_iqm([np.array([5.0, 1.0, 3.0, 2.0, 4.0])]) == 3.0        # n=5: cut 1
    assert aggregate_iqm([np.array([1.0, 2.0, 3.0, 4.0, 100.0, 7.0])]) == 4.0  # n=6: cut 1
    assert aggregate_iqm([np.array([8.0, 1.0, 2.0, 3.0])]) == 2.5             # n=4: cut 1
    assert aggregate_iqm([np.array([7.0, -1.0, 100.0])]) == 106.0 / 3          # n=3: cut 0
    assert aggregate_iqm([np.array([2.0])]) == 2.0


@pytest.mark.parametrize("size", range(1, 14))
def test_iqm_matches_brute_force(size):
    values = np.random.default_rng(size).normal(size=size)
    assert trimmed_mean(values) == pytest.approx(brute_iqm(values.tolist()), rel=1e-12)


def test_iqm_pools_runs_of_all_tasks():
    tasks = [np.array([0.1, 0.9]), np.array([0.5, 0.3, 2.0]), np.array([0.7, -4.0])]
    pooled = [0.1, 0.9, 0.5, 0.3, 2.0, 0.7, -4.0]   # n=7: cut 1 -> mean of 0.1 0.3 0.5 0.7 0.9
    assert aggregate_iqm(tasks) == pytest.approx(brute_iqm(pooled)) == pytest.approx(0.5)


def test_mean_median_optimality_gap_on_ragged_tasks():
    tasks = [np.array([0.2, 0.4]), np.array([1.5, 0.5, 1.0]), np.array([0.0])]
    # task means 0.3, 1.0, 0.0; clipped at 1: 0.3, 2.5 / 3, 0.0
    assert aggregate_mean(tasks) == pytest.approx(1.3 / 3)
    assert aggregate_median(tasks) == pytest.approx(0.3)
    assert optimality_gap(tasks) == pytest.approx(1.0 - (0.3 + 2.5 / 3) / 3)
    assert optimality_gap(tasks, gamma=0.5) == pytest.approx(0.5 - (0.3 + 1.5 / 3) / 3)


@pytest.mark.parametrize("metric", [aggregate_iqm, aggregate_mean, aggregate_median,
                                    optimality_gap])
def test_metrics_batch_over_leading_dimensions(metric):
    rng = np.random.default_rng(3)
    tasks = [rng.normal(size=(4, 3)), rng.normal(size=(4, 5))]
    batched = metric(tasks)
    assert batched.shape == (4,)
    for row in range(4):
        assert batched[row] == pytest.approx(metric([task[row] for task in tasks]), rel=1e-12)


def test_stratified_resample_draws_each_task_from_its_own_runs():
    tasks = [np.array([1.0, 2.0, 3.0]), np.array([10.0, 20.0]), np.array([-5.0])]
    replicates = stratified_resample(tasks, reps=50, rng=np.random.default_rng(0))
    assert [replicate.shape for replicate in replicates] == [(50, 3), (50, 2), (50, 1)]
    for task, replicate in zip(tasks, replicates):
        assert set(replicate.ravel().tolist()) <= set(task.tolist())


def test_stratified_bootstrap_matches_loop_with_same_draws():
    tasks = [np.array([0.3, 1.2, 0.7, 0.1, 0.9]), np.array([2.0, -1.0, 0.5]),
             np.array([0.4, 0.6, 0.8, 1.0, 1.4, 0.2, 0.0])]
    reps, seed = 300, 42
    interval = bootstrap_interval(aggregate_iqm, tasks, rng=np.random.default_rng(seed),
                                  reps=reps, confidence=0.9)

    reference_rng = np.random.default_rng(seed)
    indices = [reference_rng.integers(0, len(task), size=(reps, len(task))) for task in tasks]
    replicate_iqms = []
    for rep in range(reps):
        pooled = [float(task[i]) for task, idx in zip(tasks, indices) for i in idx[rep]]
        replicate_iqms.append(brute_iqm(pooled))
    pooled_original = [float(value) for task in tasks for value in task]
    assert interval.point == pytest.approx(brute_iqm(pooled_original), rel=1e-12)
    assert interval.low == pytest.approx(brute_quantile(replicate_iqms, 0.05), rel=1e-12)
    assert interval.high == pytest.approx(brute_quantile(replicate_iqms, 0.95), rel=1e-12)
    assert interval.low < interval.point < interval.high


def test_bootstrap_of_constant_scores_is_a_point():
    interval = bootstrap_interval(aggregate_mean, [np.full(4, 0.5), np.full(2, 0.5)],
                                  rng=np.random.default_rng(0), reps=20)
    assert interval.point == interval.low == interval.high == 0.5


def test_probability_of_improvement_hand_value_and_complement():
    x, y = [np.array([1.0, 2.0])], [np.array([2.0, 0.0])]
    # pairs: 1>2 no, 1>0 yes, 2=2 half, 2>0 yes -> 2.5 / 4
    assert probability_of_improvement(x, y) == 0.625
    assert probability_of_improvement(y, x) == 0.375


def test_probability_of_improvement_matches_pairwise_loop():
    rng = np.random.default_rng(7)
    x = [rng.integers(0, 4, size=n).astype(float) for n in (3, 5, 2)]   # small ints: many ties
    y = [rng.integers(0, 4, size=n).astype(float) for n in (4, 2, 6)]
    expected = brute_improvement([t.tolist() for t in x], [t.tolist() for t in y])
    assert probability_of_improvement(x, y) == pytest.approx(expected, rel=1e-12)
    assert probability_of_improvement(x, y) + probability_of_improvement(y, x) == pytest.approx(1)


def test_probability_of_improvement_bootstrap_resamples_each_agent_independently():
    x = [np.array([0.1, 0.5, 0.9]), np.array([1.0, 2.0])]
    y = [np.array([0.4, 0.6]), np.array([1.5, 0.5, 2.5, 1.0])]
    reps, seed = 200, 5
    interval = bootstrap_interval(probability_of_improvement, x, y,
                                  rng=np.random.default_rng(seed), reps=reps)

    reference_rng = np.random.default_rng(seed)    # all of x's draws, then all of y's
    x_idx = [reference_rng.integers(0, len(t), size=(reps, len(t))) for t in x]
    y_idx = [reference_rng.integers(0, len(t), size=(reps, len(t))) for t in y]
    replicates = [brute_improvement([[t[i] for i in idx[rep]] for t, idx in zip(x, x_idx)],
                                    [[t[i] for i in idx[rep]] for t, idx in zip(y, y_idx)])
                  for rep in range(reps)]
    assert interval.point == pytest.approx(brute_improvement([t.tolist() for t in x],
                                                             [t.tolist() for t in y]))
    assert interval.low == pytest.approx(brute_quantile(replicates, 0.025), rel=1e-12)
    assert interval.high == pytest.approx(brute_quantile(replicates, 0.975), rel=1e-12)


def test_performance_profile_matches_loop():
    tasks = [np.array([0.0, 0.5, 1.0, 1.5]), np.array([0.25, 0.5]), np.array([2.0, -0.5, 0.5])]
    taus = np.array([-1.0, 0.0, 0.25, 0.5, 0.75, 1.0, 2.0])   # includes scores: strictly above
    expected = [sum(sum(1 for value in task if value > tau) / len(task) for task in tasks)
                / len(tasks) for tau in taus]
    np.testing.assert_allclose(performance_profile(tasks, taus), expected, rtol=1e-12)
    assert performance_profile(tasks, taus)[3] == pytest.approx((2 / 4 + 0 / 2 + 1 / 3) / 3)


def test_performance_profile_bootstrap_band_per_threshold():
    tasks = [np.array([0.1, 0.4, 0.8, 1.2]), np.array([0.3, 0.6, 0.9])]
    taus = np.linspace(0.0, 1.0, 6)
    reps, seed = 100, 1
    interval = bootstrap_interval(lambda t: performance_profile(t, taus), tasks,
                                  rng=np.random.default_rng(seed), reps=reps)
    reference_rng = np.random.default_rng(seed)
    indices = [reference_rng.integers(0, len(t), size=(reps, len(t))) for t in tasks]
    for k, tau in enumerate(taus):
        replicates = [sum(sum(1 for i in idx[rep] if task[i] > tau) / len(task)
                          for task, idx in zip(tasks, indices)) / len(tasks) for rep in range(reps)]
        assert interval.low[k] == pytest.approx(brute_quantile(replicates, 0.025), abs=1e-12)
        assert interval.high[k] == pytest.approx(brute_quantile(replicates, 0.975), abs=1e-12)


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError, match="no task"):
        aggregate_mean([])
    with pytest.raises(ValueError, match="at least one run"):
        aggregate_iqm([np.array([1.0]), np.array([])])
    with pytest.raises(ValueError, match="same tasks"):
        probability_of_improvement([np.array([1.0])], [np.array([1.0]), np.array([2.0])])
    with pytest.raises(ValueError, match="reps"):
        bootstrap_interval(aggregate_mean, [np.array([1.0])], rng=np.random.default_rng(0), reps=0)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_interval(aggregate_mean, [np.array([1.0])], rng=np.random.default_rng(0),
                           confidence=1.0)
