"""A grouped rollout gives each seed group exactly the minibatches its envs alone would give."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from replay.grouped_rollout_buffer import GroupedRolloutBuffer
from replay.rollout_buffer import RolloutBuffer

T, GROUPS, N = 6, 3, 4
OBS = gym.spaces.Box(-1, 1, (2,), np.float32)
ACTIONS = gym.spaces.Discrete(3)


def filled(buffer: RolloutBuffer, data: dict[str, torch.Tensor], envs: slice) -> RolloutBuffer:
    for t in range(T):
        buffer.add(data["obs"][t, envs], data["action"][t, envs], data["log_prob"][t, envs], data["value"][t, envs],
                   data["reward"][t, envs], data["terminated"][t, envs], torch.zeros(envs.stop - envs.start, dtype=torch.bool))
    buffer.finish(data["last_value"][envs], gamma=0.9, gae_lambda=0.8)
    return buffer


@pytest.fixture
def data() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    size = (T, GROUPS * N)
    return {"obs": torch.randn(*size, 2, generator=g), "action": torch.randint(0, 3, size, generator=g),
            "log_prob": torch.randn(size, generator=g), "value": torch.randn(size, generator=g),
            "reward": torch.randn(size, generator=g), "terminated": torch.rand(size, generator=g) < 0.2,
            "last_value": torch.randn(GROUPS * N, generator=g)}


@pytest.mark.parametrize("num_minibatches", [4, 1])
def test_each_group_gets_the_minibatches_of_its_envs_alone(data, num_minibatches):
    grouped = filled(GroupedRolloutBuffer(T, GROUPS * N, OBS, ACTIONS, "cpu",
                                          [torch.Generator().manual_seed(s) for s in (5, 6, 7)]),
                     data, slice(0, GROUPS * N))
    batches = list(grouped.minibatches(num_minibatches=num_minibatches, epochs=2))
    assert len(batches) == 2 * num_minibatches and batches[0].obs.shape == (GROUPS, T * N // num_minibatches, 2)
    for k, seed in enumerate((5, 6, 7)):
        alone = filled(RolloutBuffer(T, N, OBS, ACTIONS), data, slice(k * N, (k + 1) * N))
        expected = list(alone.minibatches(num_minibatches=num_minibatches, epochs=2,
                                          generator=torch.Generator().manual_seed(seed)))
        for batch, single in zip(batches, expected, strict=True):
            for name in ("obs", "action", "log_prob", "value", "advantage", "returns", "reward", "terminated"):
                assert torch.equal(getattr(batch, name)[k], getattr(single, name)), name
        assert torch.allclose(grouped.explained_variance()[k], alone.explained_variance())


def test_grouped_buffer_refuses_uneven_groups_and_a_foreign_generator(data):
    with pytest.raises(ValueError, match="multiple of the number of groups"):
        GroupedRolloutBuffer(T, 10, OBS, ACTIONS, "cpu", [torch.Generator()] * 3)
    grouped = filled(GroupedRolloutBuffer(T, GROUPS * N, OBS, ACTIONS, "cpu", [torch.Generator()] * 3),
                     data, slice(0, GROUPS * N))
    with pytest.raises(ValueError, match="own generators"):
        next(grouped.minibatches(2, 1, generator=torch.Generator()))


def test_whole_rollout_is_every_step_in_storage_order_and_each_group_its_envs_alone(data):
    grouped = filled(GroupedRolloutBuffer(T, GROUPS * N, OBS, ACTIONS, "cpu", [torch.Generator()] * 3),
                     data, slice(0, GROUPS * N))
    whole = grouped.whole_rollout()
    assert whole.obs.shape == (GROUPS, T * N, 2)
    for k in range(GROUPS):
        alone = filled(RolloutBuffer(T, N, OBS, ACTIONS), data, slice(k * N, (k + 1) * N)).whole_rollout()
        for row in range(T * N):  # step t of env i is row t * N + i
            t, i = divmod(row, N)
            assert torch.equal(alone.obs[row], data["obs"][t, k * N + i])
            assert alone.action[row] == data["action"][t, k * N + i]
            assert alone.value[row] == data["value"][t, k * N + i]
        for name in ("obs", "action", "log_prob", "value", "advantage", "returns", "reward", "terminated"):
            assert torch.equal(getattr(whole, name)[k], getattr(alone, name)), name
