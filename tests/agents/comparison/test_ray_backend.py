"""The Ray backend gives the same runs as the local process pool (CPU training is deterministic
for a seed), and sends each run's files back to the driver. Skipped when Ray is not installed."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from agents.comparison.backends import LocalBackend, RayBackend
from agents.comparison.grid import RunTask, parse_overrides, plan_grid
from agents.comparison.execution import RETURNED_FILES
from agents.runner import CHECKPOINT

ray = pytest.importorskip("ray")

TINY = ["steps=256", "eval_every=0", "eval_episodes=2", "num_envs=2", "num_steps=32", "update_epochs=2",
        "num_minibatches=1", "log_every=64"]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def grid(runs_dir: Path, return_files: bool) -> list[RunTask]:
    return plan_grid(["ppo"], ["CartPole-v1", "Acrobot-v1"], [0, 1], parse_overrides(TINY, ["ppo"]), runs_dir,
                     return_files=return_files).tasks


def test_ray_runs_match_local_runs(tmp_path, local_ray):
    local = {Path(o.task.run_dir).name: o for o in LocalBackend(2).run(grid(tmp_path / "local", False))}
    remote = {Path(o.task.run_dir).name: o for o in RayBackend().run(grid(tmp_path / "ray", True))}
    assert sorted(remote) == sorted(local) == ["Acrobot-v1__ppo__seed0", "Acrobot-v1__ppo__seed1",
                                               "CartPole-v1__ppo__seed0", "CartPole-v1__ppo__seed1"]
    for name, outcome in remote.items():
        assert outcome.ok and local[name].ok, (outcome.error, local[name].error)
        for key in ("env", "agent", "seed", "steps", "eval_return_mean", "eval_return_std", "eval_returns"):
            assert outcome.summary[key] == local[name].summary[key], (name, key)
        run_dir = Path(outcome.task.run_dir)
        assert set(outcome.files) == set(RETURNED_FILES)
        assert all(outcome.files[file] == (run_dir / file).read_text() for file in RETURNED_FILES)
        ray_model = torch.load(run_dir / CHECKPOINT, weights_only=True)["model"]
        local_model = torch.load(Path(local[name].task.run_dir) / CHECKPOINT, weights_only=True)["model"]
        assert all(torch.equal(ray_model[key], local_model[key]) for key in local_model)
    assert len({tuple(o.summary["eval_returns"]) for o in remote.values()}) > 1  # the runs differ
