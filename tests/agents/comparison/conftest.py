"""Fake finished runs on disk, in the layout the training loop writes."""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

RunWriter = Callable[..., Path]


@pytest.fixture
def write_run(tmp_path: Path) -> RunWriter:
    """``write_run(agent, env, seed, eval_steps, eval_returns, final_return=None, steps=None)``
    writes ``tmp_path/runs/<agent>_<env>_<seed>/`` and returns it. The evaluations go to
    metrics.jsonl between training records; summary.json holds the last evaluation unless
    ``final_return``/``steps`` say otherwise."""
    def write(agent: str, env: str, seed: int, eval_steps: Sequence[int],
              eval_returns: Sequence[float], final_return: float | None = None,
              steps: int | None = None) -> Path:
        run_dir = tmp_path / "runs" / f"{agent}_{env.replace('/', '_')}_{seed}"
        run_dir.mkdir(parents=True)
        (run_dir / "config.json").write_text(json.dumps(
            {"agent": agent, "env": env, "seed": seed, "lr": 0.001}))
        lines = []
        for step, value in zip(eval_steps, eval_returns):
            lines.append({"step": step, "time": step / 100, "charts/episodic_return": -1.0})
            lines.append({"step": step, "time": step / 100, "eval/return_mean": value})
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
        (run_dir / "summary.json").write_text(json.dumps({
            "env": env, "agent": agent, "seed": seed,
            "steps": eval_steps[-1] if steps is None else steps,
            "eval_return_mean": eval_returns[-1] if final_return is None else final_return,
            "eval_return_std": 0.5, "wall_time_s": 12.0, "sps": 800.0}))
        return run_dir
    return write
