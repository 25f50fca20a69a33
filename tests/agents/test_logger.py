"""The run logger: each line's finite metrics in TensorBoard and ``metrics.jsonl``, a resumed
run's lines replacing those logged after its checkpoint."""
import json

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from agents.logger import Logger


def scalars(run_dir) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {tag: [(event.step, event.value) for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def jsonl(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_each_line_goes_to_tensorboard_and_jsonl_without_its_missing_values(tmp_path):
    logger = Logger(tmp_path, total_steps=100, progress=False)
    logger.log(10, {"losses/a": 1.5, "losses/b": torch.tensor(-2.0), "losses/c": float("nan"), "losses/d": None})
    logger.log(20, {"losses/a": 3.25, "charts/sps": float("inf")})
    logger.close()
    assert scalars(tmp_path) == {"losses/a": [(10, 1.5), (20, 3.25)], "losses/b": [(10, -2.0)]}
    lines = jsonl(tmp_path)
    assert [{k: v for k, v in line.items() if k != "time"} for line in lines] == [
        {"step": 10, "losses/a": 1.5, "losses/b": -2.0}, {"step": 20, "losses/a": 3.25}]
    assert all(line["time"] >= 0 for line in lines)


def test_a_resumed_run_replaces_the_lines_logged_after_its_checkpoint(tmp_path):
    first = Logger(tmp_path, total_steps=100, progress=False)
    for step in (10, 20, 30):
        first.log(step, {"losses/a": float(step)})
    first.close()
    resumed = Logger(tmp_path, total_steps=100, start_step=20, progress=False)  # the checkpoint was at 20
    resumed.log(30, {"losses/a": -1.0})
    resumed.close()
    assert scalars(tmp_path) == {"losses/a": [(10, 10.0), (20, 20.0), (30, -1.0)]}
    assert [(line["step"], line["losses/a"]) for line in jsonl(tmp_path)] == [(10, 10.0), (20, 20.0), (30, -1.0)]
