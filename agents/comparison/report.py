"""Finished runs -> every number of a comparison (``compare``) and its files (``write_report``).

The numbers: per environment and agent, the final evaluation return over seeds (mean and IQM
with bootstrap confidence intervals) and the normalised area under the learning curve, taken
over the steps every run on that environment evaluated so that agents evaluated on different
schedules are scored over the same range; across
environments, on normalised scores, IQM / mean / median / optimality gap per agent, the
probability of improvement of every agent over every other and performance profiles, all with
stratified-bootstrap confidence intervals (Agarwal et al. 2021). The same runs and ``rng_seed``
give byte-identical summary files. Runs without a result (failed, unfinished, diverged) count in
no statistic, not even as zero: they are listed with the reason.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from agents.comparison.markdown import render_markdown
from agents.comparison.normalize import normalizer_for
from agents.comparison.plots import plot_aggregate, plot_learning_curves
from agents.comparison.runs import (EVAL_METRIC, LeftOutRun, Run, RunKey, common_grid_curves,
                                    group_runs, learning_curves, normalized_auc,
                                    read_run_folders, shared_step_range)
from agents.comparison.stats import (AGGREGATE_METRICS, Interval, aggregate_iqm,
                                     aggregate_mean, bootstrap_interval, performance_profile,
                                     probability_of_improvement)


def _jsonable(value) -> float | list | None:
    """A float or nested list with NaN/inf as null, so the file is strict JSON."""
    if np.ndim(value) > 0:
        return [_jsonable(item) for item in np.asarray(value)]
    value = float(value)
    return value if math.isfinite(value) else None


def _interval_json(interval: Interval) -> dict:
    return {"point": _jsonable(interval.point), "low": _jsonable(interval.low),
            "high": _jsonable(interval.high)}


RunId = tuple[str, str, int]  # (agent, env, seed): unique among the runs of a report


def _aligned_aucs(runs: Sequence[Run], envs: Sequence[str]
                  ) -> tuple[dict[str, dict | None], dict[RunId, float]]:
    """Per env, the steps every run on it evaluated ({"start", "stop"}, None when they share
    none); per run, its normalised AUC over that range (NaN where there is none). On one range
    the AUC depends on the learning curve only, not on how often a run was evaluated."""
    ranges: dict[str, dict | None] = {}
    aucs: dict[RunId, float] = {}
    for env in envs:
        env_runs = [run for run in runs if run.env == env]
        span = shared_step_range(env_runs)
        ranges[env] = None if span is None else {"start": span[0], "stop": span[1]}
        if span is None:
            aucs.update({(run.agent, run.env, run.seed): math.nan for run in env_runs})
            continue
        grid, curves = common_grid_curves(env_runs)
        aucs.update({(run.agent, run.env, run.seed): normalized_auc(grid, curve)
                     for run, curve in zip(env_runs, curves)})
    return ranges, aucs


def _left_out_json(item: LeftOutRun) -> dict:
    return {"run": item.name, "env": item.env, "agent": item.agent, "seed": item.seed,
            "reason": item.reason}


def _per_env(groups: Mapping[RunKey, list[Run]], normalized: Mapping[RunKey, np.ndarray],
             aucs_by_run: Mapping[RunId, float], rng: np.random.Generator, reps: int,
             confidence: float) -> dict:
    """env -> agent -> numbers over that agent's seeds on that env."""
    table: dict[str, dict] = {}
    for (agent, env), runs in groups.items():
        returns = np.array([run.final_return for run in runs])
        aucs = np.array([aucs_by_run[(run.agent, run.env, run.seed)] for run in runs])
        iqm = bootstrap_interval(aggregate_iqm, [returns], rng=rng, reps=reps,
                                 confidence=confidence)
        mean = bootstrap_interval(aggregate_mean, [returns], rng=rng, reps=reps,
                                  confidence=confidence)
        table.setdefault(env, {})[agent] = {
            "seeds": [run.seed for run in runs],
            # the best evaluation each seed reached within its budget ("reaches 475 within 100k")
            "best_returns": [_jsonable(run.curve_returns.max()) for run in runs],
            "steps_mean": _jsonable(np.mean([run.steps for run in runs])),
            "final_return_mean": _jsonable(returns.mean()),
            "final_return_std": _jsonable(returns.std()),
            "final_return_iqm": _interval_json(iqm),
            "final_return_mean_ci": _interval_json(mean),
            "normalized_score_mean": _jsonable(normalized[(agent, env)].mean()),
            "auc_mean": _jsonable(aucs.mean()),
            "auc_std": _jsonable(aucs.std()),
            "wall_time_s_mean": _jsonable(np.mean([run.wall_time_s for run in runs])),
            "sps_mean": _jsonable(np.mean([run.sps for run in runs])),
        }
    return {env: table[env] for env in sorted(table)}


def _across_envs(agents: Sequence[str], envs: Sequence[str],
                 normalized: Mapping[RunKey, np.ndarray], rng: np.random.Generator,
                 reps: int, confidence: float, num_taus: int) -> dict:
    """Aggregates, probability of improvement and performance profiles on ``envs``."""
    scores = {agent: [normalized[(agent, env)] for env in envs] for agent in agents}
    metrics = {agent: {name: _interval_json(bootstrap_interval(
        metric, scores[agent], rng=rng, reps=reps, confidence=confidence))
        for name, metric in AGGREGATE_METRICS.items()} for agent in agents}
    improvement = {x: {y: _interval_json(bootstrap_interval(
        probability_of_improvement, scores[x], scores[y], rng=rng, reps=reps,
        confidence=confidence)) for y in agents if y != x} for x in agents}
    pooled = np.concatenate([task for tasks in scores.values() for task in tasks])
    taus = np.linspace(min(0.0, pooled.min()), max(1.0, pooled.max()), num_taus)
    profiles = {agent: _interval_json(bootstrap_interval(
        lambda tasks: performance_profile(tasks, taus), scores[agent], rng=rng, reps=reps,
        confidence=confidence)) for agent in agents}
    return {"metrics": metrics, "probability_of_improvement": improvement,
            "performance_profile": {"taus": _jsonable(taus), "agents": profiles}}


def compare(runs: Sequence[Run], *, rng: np.random.Generator, reps: int = 2000,
            confidence: float = 0.95, bounds: Mapping[str, tuple[float, float]] | None = None,
            num_taus: int = 101, left_out: Sequence[LeftOutRun] = ()) -> dict:
    """Every number of the comparison of ``runs``, as JSON-ready nested dicts.

    Aggregates across environments use only the environments every agent ran, so that each
    agent is scored on the same tasks; the others are listed under ``excluded_envs``. The runs
    ``left_out`` (``runs.read_run_folders``) are listed under ``left_out_runs``.
    """
    groups = group_runs(runs)
    agents = sorted({agent for agent, _ in groups})
    envs = sorted({env for _, env in groups})
    normalizers = {env: normalizer_for(env, np.array([run.final_return for run in runs
                                                      if run.env == env]), bounds)
                   for env in envs}
    normalized = {key: normalizers[key[1]](np.array([run.final_return for run in group]))
                  for key, group in groups.items()}
    shared = [env for env in envs if all((agent, env) in groups for agent in agents)]
    auc_steps, aucs = _aligned_aucs(runs, envs)
    report = {
        "settings": {"reps": reps, "confidence": confidence, "num_runs": len(runs)},
        "agents": agents,
        "envs": envs,
        "normalization": {env: {"method": n.method, "low": n.low, "high": n.high}
                          for env, n in normalizers.items()},
        "auc_steps": auc_steps,
        "per_env": _per_env(groups, normalized, aucs, rng, reps, confidence),
        "aggregate_envs": shared,
        "excluded_envs": [env for env in envs if env not in shared],
        "left_out_runs": [_left_out_json(item) for item in left_out],
    }
    if shared:
        report.update(_across_envs(agents, shared, normalized, rng, reps, confidence, num_taus))
    return report


def curve_bands(runs: Sequence[Run], *, rng: np.random.Generator, reps: int = 2000,
                confidence: float = 0.95, num_points: int = 100
                ) -> dict[RunKey, tuple[np.ndarray, Interval]]:
    """Per (agent, env): the step grid and the mean learning curve over seeds with its
    bootstrap confidence band (seeds resampled; one task whose runs are the seeds)."""
    bands = {}
    for key, (grid, curves) in learning_curves(runs, num_points).items():
        bands[key] = (grid, bootstrap_interval(aggregate_mean, [curves.T], rng=rng, reps=reps,
                                               confidence=confidence))
    return bands


def write_report(runs: str | Path | Iterable[str | Path], out_dir: str | Path,
                 rng_seed: int = 0, *, reps: int = 2000, confidence: float = 0.95,
                 bounds: Mapping[str, tuple[float, float]] | None = None,
                 metric: str = EVAL_METRIC, factors: Mapping | None = None) -> dict:
    """Writes summary.json, summary.md, curves.png and aggregate.png into ``out_dir`` for the
    runs of a folder of runs (or of a list of run folders); returns summary.json's content.
    ``metric`` names the metrics.jsonl entry drawn as learning curves; no run logging it is an error.

    ``factors`` describes a factorial grid of variants, ``{"names": ["encoder", "aux"],
    "cells": [{"variant": "nature+curl", "levels": ["nature", "curl"]}, ...]}``: it is kept in
    summary.json and summary.md opens with one row per cell, in the order given.

    The bootstrap of the summary and the one of the curve bands draw from two independent
    streams of ``rng_seed``, so the numbers do not depend on whether the plots are drawn.
    """
    loaded, left_out = read_run_folders(runs, metric)
    summary_seed, curves_seed = np.random.SeedSequence(rng_seed).spawn(2)
    summary = compare(loaded, rng=np.random.default_rng(summary_seed), reps=reps,
                      confidence=confidence, bounds=bounds, left_out=left_out)
    summary["settings"].update({"rng_seed": rng_seed, "metric": metric})
    if factors is not None:
        summary["factors"] = {"names": list(factors["names"]), "cells": list(factors["cells"])}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").write_text(
        json.dumps(summary, indent=2, sort_keys=True, allow_nan=False) + "\n")
    (out_dir / "summary.md").write_text(render_markdown(summary))
    bands = curve_bands(loaded, rng=np.random.default_rng(curves_seed), reps=reps,
                        confidence=confidence)
    plot_learning_curves(bands, out_dir / "curves.png", metric=metric)
    plot_aggregate(summary, out_dir / "aggregate.png")
    return summary
