"""The two pictures of a comparison: learning curves per environment and aggregate metrics.

Figures are built with ``matplotlib.figure.Figure`` and written by the Agg renderer, without
pyplot, so plotting works headless and leaves no global figure state behind.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from agents.comparison.runs import RunKey
from agents.comparison.stats import METRIC_TITLES, Interval


def agent_colors(agents: list[str]) -> dict[str, tuple]:
    """One fixed colour per agent (by sorted name), the same in every panel."""
    cmap = colormaps["tab10"]
    return {agent: cmap(index % 10) for index, agent in enumerate(sorted(agents))}


def plot_learning_curves(bands: Mapping[RunKey, tuple[np.ndarray, Interval]], path: str | Path,
                         metric: str = "evaluation return") -> None:
    """curves.png: one panel per environment, the mean curve over seeds of each agent with its
    bootstrap confidence band, x = environment steps."""
    envs = sorted({env for _, env in bands})
    colors = agent_colors(sorted({agent for agent, _ in bands}))
    columns = min(3, len(envs))
    rows = math.ceil(len(envs) / columns)
    figure = Figure(figsize=(5 * columns, 3.6 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, env in zip(axes, envs):
        for (agent, agent_env), (grid, band) in sorted(bands.items()):
            if agent_env != env:
                continue
            # A run evaluated only at its end is one point: drawn as a marker with its interval.
            marker = "o" if len(grid) == 1 else None
            ax.plot(grid, band.point, color=colors[agent], label=agent, marker=marker)
            if len(grid) == 1:
                ax.errorbar(grid, band.point, yerr=[band.point - band.low, band.high - band.point], color=colors[agent],
                            capsize=4)
            else:
                ax.fill_between(grid, band.low, band.high, color=colors[agent], alpha=0.2, linewidth=0)
        ax.set_title(env)
        ax.set_xlabel("env steps")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in axes[len(envs):]:
        ax.set_visible(False)
    figure.savefig(path, dpi=100)


def _interval_panel(ax: Axes, labels: list[str], intervals: list[dict], colors: list) -> None:
    """Point estimates with horizontal confidence-interval bars, one row per label."""
    for row, (interval, color) in enumerate(zip(intervals, colors)):
        point, low, high = interval["point"], interval["low"], interval["high"]
        ax.errorbar(point, row, xerr=[[point - low], [high - point]], fmt="o", color=color,
                    capsize=4)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_ylim(-0.5, len(labels) - 0.5)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)


def plot_aggregate(summary: dict, path: str | Path) -> None:
    """aggregate.png from summary.json's content: IQM / mean / median / optimality gap with
    CI bars per agent (top row), probability of improvement of each pair and performance
    profiles with bootstrap bands (bottom row)."""
    figure = Figure(figsize=(16, 8), layout="constrained")
    if not summary["aggregate_envs"]:
        figure.text(0.5, 0.5, "no environment was run by every agent", ha="center")
        figure.savefig(path, dpi=100)
        return
    agents = summary["agents"]
    colors = agent_colors(agents)
    grid = figure.add_gridspec(2, 4)
    for column, (name, title) in enumerate(METRIC_TITLES.items()):
        ax = figure.add_subplot(grid[0, column])
        _interval_panel(ax, agents, [summary["metrics"][agent][name] for agent in agents],
                        [colors[agent] for agent in agents])
        ax.set_title(title)
        ax.set_xlabel("normalised score")
        if column:
            ax.tick_params(labelleft=False)

    ax = figure.add_subplot(grid[1, :2])
    improvement = summary["probability_of_improvement"]
    # Each pair once, read as "the better one beats the other with probability P >= 0.5".
    pairs = [(x, y) if improvement[x][y]["point"] >= 0.5 else (y, x)
             for i, x in enumerate(agents) for y in agents[i + 1:]]
    if pairs:
        _interval_panel(ax, [f"{x} > {y}" for x, y in pairs],
                        [improvement[x][y] for x, y in pairs], [colors[x] for x, _ in pairs])
    else:
        ax.text(0.5, 0.5, "one agent: no pair to compare", ha="center", transform=ax.transAxes)
    ax.axvline(0.5, color="gray", linestyle="--", linewidth=1)
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("P(X > Y)")
    ax.set_title("Probability of improvement")

    ax = figure.add_subplot(grid[1, 2:])
    profile = summary["performance_profile"]
    for agent in agents:
        band = profile["agents"][agent]
        ax.plot(profile["taus"], band["point"], color=colors[agent], label=agent)
        ax.fill_between(profile["taus"], band["low"], band["high"], color=colors[agent],
                        alpha=0.2, linewidth=0)
    ax.set_xlabel("normalised score τ")
    ax.set_ylabel("fraction of runs with score > τ")
    ax.set_title("Performance profile")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    figure.suptitle(f"Across {', '.join(summary['aggregate_envs'])}")
    figure.savefig(path, dpi=100)
