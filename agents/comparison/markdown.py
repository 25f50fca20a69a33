"""The summary a person reads: the numbers of ``report.compare`` as Markdown tables."""
from __future__ import annotations

from agents.comparison.stats import METRIC_TITLES


def _number(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _interval(interval: dict, digits: int = 2) -> str:
    return (f"{_number(interval['point'], digits)} "
            f"[{_number(interval['low'], digits)}, {_number(interval['high'], digits)}]")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]


def _left_out_cells(summary: dict) -> set[tuple[str, str]]:
    """(env, agent) of the runs left out of the numbers, where their config.json names them."""
    return {(item["env"], item["agent"]) for item in summary["left_out_runs"]
            if item["env"] is not None and item["agent"] is not None}


def _seeds(found: list[int], most: int) -> str:
    """A cell's number of seeds, and which they are when another agent on its env has more."""
    if len(found) >= most:
        return str(len(found))
    return f"{len(found)} of {most}" + (": " + ", ".join(map(str, found)) if found else "")


def _auc_steps(summary: dict) -> str:
    spans = []
    for env, span in summary["auc_steps"].items():
        if span is None:
            spans.append(f"{env}: no step shared by all runs, no AUC")
        elif span["start"] == span["stop"]:
            spans.append(f"{env}: step {_number(span['start'], 0)}")
        else:
            spans.append(f"{env}: steps {_number(span['start'], 0)}–{_number(span['stop'], 0)}")
    return "; ".join(spans)


def _per_env_section(summary: dict) -> list[str]:
    confidence = f"{summary['settings']['confidence']:.0%}"
    header = ["env", "agent", "seeds", "final return (mean ± std)", f"IQM [{confidence} CI]",
              "AUC (mean ± std)", "normalised score", "best evaluation per seed", "steps", "wall time (s)"]
    per_env = summary["per_env"]
    cells = {(env, agent) for env, agents in per_env.items() for agent in agents}
    rows = []
    for env, agent in sorted(cells | _left_out_cells(summary)):
        most = max((len(row["seeds"]) for row in per_env.get(env, {}).values()), default=0)
        row = per_env.get(env, {}).get(agent)
        if row is None:  # every run of this agent on this env is left out
            rows.append([env, agent, _seeds([], most), *["—"] * (len(header) - 3)])
            continue
        spread = f"{_number(row['final_return_mean'])} ± {_number(row['final_return_std'])}"
        rows.append([env, agent, _seeds(row["seeds"], most), spread,
                     _interval(row["final_return_iqm"]),
                     f"{_number(row['auc_mean'])} ± {_number(row['auc_std'])}",
                     _number(row["normalized_score_mean"], 3),
                     " / ".join(_number(best, 1) for best in row["best_returns"]),
                     _number(row["steps_mean"], 0), _number(row["wall_time_s_mean"], 1)])
    return ["## Final evaluation return per environment", "",
            "Over seeds: std is the population standard deviation; AUC is the area under the "
            "evaluation learning curve (linear between evaluations) over the steps every run on "
            "its environment evaluated, divided by that range: the average return over the same "
            f"steps for every agent ({_auc_steps(summary)}); the best evaluation per seed is the "
            "highest any of its evaluations reached within the budget, seeds in the order of the "
            "seeds column; steps and wall time are means over seeds. A cell with fewer seeds than "
            "another on its environment lists the seeds it has (\"2 of 3: 0, 2\"); its other runs "
            "are under \"Runs not in this report\".", "",
            *_table(header, rows), ""]


def _factor_section(summary: dict) -> list[str]:
    """One row per cell of a factorial grid of variants (``write_report(factors=...)``) and env;
    a cell with no finished run on an env says so."""
    factors = summary["factors"]
    left_out = _left_out_cells(summary)
    confidence = f"{summary['settings']['confidence']:.0%}"
    header = ["env", *factors["names"], "seeds", f"final return mean [{confidence} CI]", "steps",
              "wall time (s)"]
    rows = []
    for env, agents in summary["per_env"].items():
        for cell in factors["cells"]:
            row = agents.get(cell["variant"])
            if row is None:
                status = "none finished" if (env, cell["variant"]) in left_out else "not run"
                rows.append([env, *cell["levels"], "0", status, "—", "—"])
                continue
            rows.append([env, *cell["levels"], str(len(row["seeds"])), _interval(row["final_return_mean_ci"]),
                         _number(row["steps_mean"], 0), _number(row["wall_time_s_mean"], 1)])
    return [f"## {' x '.join(factors['names'])}", "",
            "Final evaluation return: mean over seeds with its stratified-bootstrap confidence interval "
            "(seeds resampled); steps and wall time are means over seeds.", "",
            *_table(header, rows), ""]


def _left_out_section(summary: dict) -> list[str]:
    """The run folders with no result in the numbers, and why."""
    left_out = summary["left_out_runs"]
    if not left_out:
        return []
    rows = [[item["run"], item["env"] or "—", item["agent"] or "—",
             "—" if item["seed"] is None else str(item["seed"]), item["reason"]] for item in left_out]
    return ["## Runs not in this report", "",
            f"{len(left_out)} run folder(s) without a result: they count in no number of this "
            "report (not as zero).", "",
            *_table(["run", "env", "agent", "seed", "reason"], rows), ""]


def _normalization_section(summary: dict) -> list[str]:
    rows = [[env, n["method"], _number(n["low"]), _number(n["high"])]
            for env, n in summary["normalization"].items()]
    return ["## Score normalisation", "",
            "normalised score = (return - score-0 return) / (score-1 return - score-0 return)", "",
            *_table(["env", "method", "return scoring 0", "return scoring 1"], rows), ""]


def _aggregate_section(summary: dict) -> list[str]:
    lines = ["## Across environments (normalised scores)", ""]
    if not summary["aggregate_envs"]:
        return lines + ["No environment was run by every agent: no aggregate.", ""]
    confidence = f"{summary['settings']['confidence']:.0%}"
    lines += [f"Environments: {', '.join(summary['aggregate_envs'])}."]
    if summary["excluded_envs"]:
        lines += [f"Left out (not run by every agent): {', '.join(summary['excluded_envs'])}."]
    lines += [f"Point estimate [{confidence} stratified-bootstrap CI, "
              f"{summary['settings']['reps']} replicates].", ""]
    rows = [[agent] + [_interval(metrics[name], 3) for name in METRIC_TITLES]
            for agent, metrics in summary["metrics"].items()]
    lines += _table(["agent", *METRIC_TITLES.values()], rows) + [""]

    agents = summary["agents"]
    improvement = summary["probability_of_improvement"]
    rows = [[x] + ["—" if x == y else _interval(improvement[x][y], 3) for y in agents]
            for x in agents]
    lines += ["### Probability of improvement P(row > column)", "",
              *_table(["", *agents], rows), "",
              "Performance profiles (fraction of runs above each normalised score) are in "
              "summary.json and aggregate.png.", ""]
    return lines


def render_markdown(summary: dict) -> str:
    """summary.md from the content of summary.json (``report.compare``'s numbers)."""
    settings = ", ".join(f"{key} {value}" for key, value in sorted(summary["settings"].items()))
    lines = ["# Agent comparison", "",
             f"Agents: {', '.join(summary['agents'])}; envs: {', '.join(summary['envs'])}.",
             f"Settings: {settings}.", ""]
    lines += _left_out_section(summary)
    if "factors" in summary:
        lines += _factor_section(summary)
    lines += _per_env_section(summary) + _normalization_section(summary)
    lines += _aggregate_section(summary)
    return "\n".join(lines)
