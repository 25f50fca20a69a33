"""Denormal floats flushed to zero on the training thread, and the flags put back afterwards."""
from __future__ import annotations

import pytest
import torch

from agents import DQN
from agents.denormals import denormals_flushed, flushing_denormals

DENORMAL = 1e-39  # below float32's smallest normal, 1.18e-38

pytestmark = pytest.mark.skipif(not torch.set_flush_denormal(False), reason="no DAZ/FTZ flags on this CPU")


def test_inside_the_block_denormals_read_and_compute_as_zero_and_the_flags_come_back():
    x = torch.full((4,), DENORMAL)
    assert not flushing_denormals() and torch.equal(x * 1, x)
    with denormals_flushed():
        assert flushing_denormals()
        assert torch.equal(x * 1, torch.zeros(4))  # a denormal input reads as zero
        assert torch.equal(torch.full((4,), 1e-20) * 1e-20, torch.zeros(4))  # a denormal result is zero
        assert torch.equal(torch.full((4,), 1e-30) * 2, torch.full((4,), 2e-30))  # normal floats untouched
    assert not flushing_denormals() and torch.equal(x * 1, x)


def test_a_caller_that_already_flushes_keeps_flushing():
    torch.set_flush_denormal(True)
    try:
        with denormals_flushed():
            assert flushing_denormals()
        assert flushing_denormals()
    finally:
        torch.set_flush_denormal(False)


def test_a_run_trains_with_denormals_flushed_and_restores_the_flags(tmp_path):
    seen = []

    class Spy(DQN):
        def after_step(self, next_obs, step):
            seen.append(flushing_denormals())
            return super().after_step(next_obs, step)

    Spy.from_env("CartPole-v1", steps=64, learning_starts=32, train_frequency=16, eval_every=0, checkpoint_every=0,
                 eval_episodes=1).learn(run_dir=tmp_path, progress=False)
    assert seen and all(seen)
    assert not flushing_denormals()
