"""Run logging: TensorBoard scalars, ``metrics.jsonl`` and a progress bar, from one call."""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from tensorboard.compat.proto.summary_pb2 import Summary
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm


def _truncate_jsonl(path: Path, last_step: int) -> None:
    """Drops lines logged after ``last_step`` (written by a run that died after its checkpoint)."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= last_step]
    path.write_text("".join(line + "\n" for line in kept))


class Logger:
    def __init__(self, run_dir: str | os.PathLike, total_steps: int, start_step: int = 0,
                 elapsed: float = 0.0, progress: bool = True, report_evaluations: bool = False):
        """``report_evaluations``: print each evaluation as a line on stdout, for logs kept
        without a progress bar."""
        self.run_dir = Path(run_dir)
        self._report = report_evaluations
        self.run_dir.mkdir(parents=True, exist_ok=True)
        jsonl = self.run_dir / "metrics.jsonl"
        _truncate_jsonl(jsonl, start_step)
        self._jsonl = open(jsonl, "a")
        # TensorBoard hides the events of earlier files after ``start_step`` (it purges from the
        # step given on): those of the steps a resumed run makes again, or all of a run that
        # stopped before its first checkpoint. The line at ``start_step`` stays, as in the jsonl.
        self._writer = SummaryWriter(str(self.run_dir), purge_step=start_step + 1)
        self._start = time.perf_counter() - elapsed
        self._bar = tqdm(total=total_steps, initial=start_step, unit="step", dynamic_ncols=True,
                         disable=not progress, smoothing=0.05)
        self._postfix: dict[str, str] = {}

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self._start

    def log(self, step: int, metrics: dict[str, float]) -> None:
        clean = {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}
        # All of a line's scalars as one TensorBoard event: an event each (``add_scalar``) took
        # 61 us a scalar here, the writer's queue of ten blocking the run until its thread caught up.
        values = [Summary.Value(tag=name, simple_value=value) for name, value in clean.items()]
        self._writer.file_writer.add_summary(Summary(value=values), step)
        self._jsonl.write(json.dumps({"step": step, "time": round(self.elapsed, 3), **clean}) + "\n")
        self._jsonl.flush()
        if "charts/sps" in clean:
            self._postfix["sps"] = f"{clean['charts/sps']:.0f}"
        if "charts/episodic_return" in clean:
            self._postfix["return"] = f"{clean['charts/episodic_return']:.1f}"
        if "eval/return_mean" in clean:
            self._postfix["eval"] = f"{clean['eval/return_mean']:.1f}"
            if self._report:
                self._report_evaluation(step, clean)
        self._bar.set_postfix(self._postfix, refresh=False)

    def _report_evaluation(self, step: int, metrics: dict[str, float]) -> None:
        parts = [f"eval return {metrics['eval/return_mean']:.1f} ± {metrics.get('eval/return_std', 0.0):.1f}"]
        if "return" in self._postfix:
            parts.append(f"training return {self._postfix['return']}")
        if "sps" in self._postfix:
            parts.append(f"{self._postfix['sps']} steps/s")
        print(f"{self.run_dir.name} step {step}: {', '.join(parts)}", flush=True)

    def advance(self, steps: int) -> None:
        self._bar.update(steps)

    def write(self, message: str) -> None:
        self._bar.write(message)

    def close(self) -> None:
        self._bar.close()
        self._writer.close()
        self._jsonl.close()
