"""A grouped replay buffer gives each seed group exactly the samples its envs alone would give."""
from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import pytest
import torch

from replay.grouped_replay_buffer import GroupedReplayBuffer
from replay.replay_buffer import ReplayBuffer

GROUPS, N, STEPS, CAPACITY = 3, 2, 80, 60  # 30 rows per env: the ring wraps
OBS = gym.spaces.Box(-1, 1, (2,), np.float32)
ACTIONS = gym.spaces.Discrete(3)
FIELDS = ("obs", "action", "reward", "next_obs", "terminated", "discount", "weights", "next_action")


def play(buffers: list[tuple[ReplayBuffer, slice]], seed: int = 0, between: Callable[[], None] | None = None,
         every: int = STEPS) -> None:
    """Adds the same random steps of GROUPS * N envs to every buffer, each taking its ``slice`` of
    envs; calls ``between`` after every ``every`` steps."""
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(GROUPS * N, 2, generator=g)
    for step in range(STEPS):
        if between is not None and step and step % every == 0:
            between()
        next_obs = torch.randn(GROUPS * N, 2, generator=g)
        terminated = torch.rand(GROUPS * N, generator=g) < 0.1
        truncated = (torch.rand(GROUPS * N, generator=g) < 0.05) & ~terminated
        action, reward = torch.randint(0, 3, (GROUPS * N,), generator=g), torch.randn(GROUPS * N, generator=g)
        for buffer, envs in buffers:
            buffer.add(obs[envs], action[envs], reward[envs], next_obs[envs], terminated[envs], truncated[envs])
        obs = torch.where((terminated | truncated)[:, None], torch.randn(GROUPS * N, 2, generator=g), next_obs)


@pytest.mark.parametrize("n_step, prioritized", [(1, False), (3, False), (1, True), (3, True)])
def test_each_group_samples_what_its_envs_alone_would(n_step, prioritized):
    seeds = (5, 6, 7)
    options = dict(n_step=n_step, gamma=0.9, prioritized=prioritized, alpha=0.7)
    grouped = GroupedReplayBuffer(CAPACITY, GROUPS * N, OBS, ACTIONS, "cpu",
                                  [torch.Generator().manual_seed(s) for s in seeds], **options)
    alone = [ReplayBuffer(CAPACITY, N, OBS, ACTIONS, **options) for _ in seeds]
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    priorities = torch.Generator().manual_seed(1)
    batches = []

    def sample_and_reprioritize() -> None:  # the groups' generators advance as the lone buffers' would
        assert len(grouped) == sum(len(b) for b in alone)
        batch = grouped.sample(40, beta=0.5)
        assert batch.obs.shape == (GROUPS, 40, 2) and batch.reward.shape == (GROUPS, 40)
        new_priorities = torch.rand(GROUPS, 40, generator=priorities, dtype=torch.float64) * 5
        grouped.update_priorities(batch.indices, new_priorities)
        for k, (buffer, generator) in enumerate(zip(alone, generators)):
            expected = buffer.sample(40, beta=0.5, generator=generator)
            for name in FIELDS:
                assert torch.equal(getattr(batch, name)[k], getattr(expected, name)), name
            # the same transitions, numbered among all GROUPS * N envs
            step, env = batch.indices[k] // (GROUPS * N), batch.indices[k] % (GROUPS * N)
            assert torch.equal(step * N + env - k * N, expected.indices)
            buffer.update_priorities(expected.indices, new_priorities[k])
        batches.append(batch)

    # samples and new priorities every 10 steps, while adds go on (the ring wraps)
    play([(grouped, slice(None))] + [(buffer, slice(k * N, (k + 1) * N)) for k, buffer in enumerate(alone)],
         between=sample_and_reprioritize, every=10)
    assert grouped.rows == alone[0].rows == CAPACITY // N and len(batches) == STEPS // 10 - 1
    batch = batches[-1]
    if prioritized:  # the weights were not all ones, and each group keeps its own maximum
        assert not torch.equal(batch.weights, torch.ones_like(batch.weights))
        assert torch.equal(grouped.max_priority, torch.cat([buffer.max_priority for buffer in alone]))
        assert len(set(grouped.max_priority.tolist())) == GROUPS


def test_grouped_replay_refuses_uneven_groups_a_foreign_generator_and_empty_groups():
    with pytest.raises(ValueError, match="multiple of the number of groups"):
        GroupedReplayBuffer(CAPACITY, 5, OBS, ACTIONS, "cpu", [torch.Generator()] * 2)
    grouped = GroupedReplayBuffer(CAPACITY, GROUPS * N, OBS, ACTIONS, "cpu", [torch.Generator()] * GROUPS)
    with pytest.raises(ValueError, match="nothing sampleable"):
        grouped.sample(4)
    play([(grouped, slice(None))])
    with pytest.raises(ValueError, match="own generators"):
        grouped.sample(4, generator=torch.Generator())
