"""Ctrl-C stops a grid's runs at a checkpoint each, whether it reaches the workers or only the parent."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from agents.runner import CHECKPOINT

COMPARE = Path(__file__).resolve().parents[3] / "scripts" / "compare.py"
STEPS = 10_000_000  # far more than the test lets the runs make


def test_ctrl_c_to_the_parent_alone_stops_every_run_at_a_checkpoint(tmp_path):
    out = tmp_path / "out"
    settings = ["eval_every=0", "eval_episodes=2", "num_envs=2", "num_steps=32", "log_every=64", "checkpoint_every=0"]
    process = subprocess.Popen([sys.executable, str(COMPARE), "--agents", "ppo", "--envs", "CartPole-v1",
                                "--seeds", "2", "--steps", str(STEPS), "--workers", "2", "--out", str(out),
                                "--no-progress", *[item for setting in settings for item in ("--set", setting)]],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runs = [out / "runs" / f"CartPole-v1__ppo__seed{seed}" for seed in (0, 1)]
    deadline = time.monotonic() + 120
    while not all((run / "metrics.jsonl").is_file() and (run / "metrics.jsonl").stat().st_size for run in runs):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)  # not to the workers: the parent has them stop
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    assert stderr.strip().splitlines()[-1] == "interrupted: run the same command again to resume"
    assert "Traceback" not in stderr
    for run in runs:
        step = torch.load(run / CHECKPOINT, weights_only=True)["runner"]["step"]
        assert 0 < step < STEPS and not (run / "summary.json").exists()
