"""The allocator bench case times the same DDPM steps in two fresh processes, one per setting."""
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from bench_cases import allocator_cases  # noqa: E402


def test_each_side_runs_the_same_steps_in_its_own_process_and_only_one_sets_the_heap(monkeypatch):
    children, seconds = [], []
    real_run = subprocess.run

    def spy(argv, **kwargs):
        children.append(argv[3:])
        done = real_run(argv, **kwargs)
        seconds.append(json.loads(done.stdout)["seconds"])
        return done

    monkeypatch.setattr(allocator_cases.subprocess, "run", spy)
    row, = allocator_cases.run(quick=True)
    assert children == [["default", "1", "4"], ["heap", "1", "4"]]
    assert (row["case"], row["steps"], row["batch_size"]) == ("ddpm_frames_allocator", 1, 4)
    assert (row["default_s"], row["large_blocks_s"]) == (round(seconds[0], 2), round(seconds[1], 2))
    assert row["ratio"] == round(seconds[0] / seconds[1], 3) and all(s > 0 for s in seconds)

