"""Replay benchmarks: prioritized sampling speed against a per-sample numpy sum-tree (the usual
reference implementation), and the memory of a million Atari transitions."""
from __future__ import annotations

import time
from typing import Callable, Iterator

import gymnasium as gym
import numpy as np
import torch

from replay.replay_buffer import ReplayBuffer

TRANSITIONS = 1_000_000


class ReferencePerSampleSumTree:
    """The reference: a binary sum-tree walked one sample at a time in Python over numpy."""

    def __init__(self, capacity: int) -> None:
        self.capacity = 1 << (capacity - 1).bit_length()
        self.tree = np.zeros(2 * self.capacity)

    def fill(self, values: np.ndarray) -> None:
        self.tree[self.capacity:self.capacity + len(values)] = values
        for level in range(self.capacity.bit_length() - 2, -1, -1):
            first = 1 << level
            self.tree[first:2 * first] = self.tree[2 * first:4 * first:2] + self.tree[2 * first + 1:4 * first:2]

    def update(self, index: int, value: float) -> None:
        node = index + self.capacity
        self.tree[node] = value
        node //= 2
        while node >= 1:
            self.tree[node] = self.tree[2 * node] + self.tree[2 * node + 1]
            node //= 2

    def find(self, target: float) -> int:
        node = 1
        while node < self.capacity:
            left = self.tree[2 * node]
            if target < left:
                node = 2 * node
            else:
                target -= left
                node = 2 * node + 1
        return node - self.capacity

    def sample_and_update(self, batch_size: int, rng: np.random.Generator) -> None:
        segment = self.tree[1] / batch_size
        indices = [self.find((i + rng.random()) * segment) for i in range(batch_size)]
        for index in indices:
            self.update(index, rng.random() + 1e-6)


def _us_per_call(fn: Callable[[], None], seconds: float) -> float:
    fn()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        calls += 1
    return (time.perf_counter() - start) / calls * 1e6


def _filled_prioritized_buffer(num_envs: int = 1000) -> ReplayBuffer:
    """A 1M-transition prioritized buffer of small observations, filled through ``add`` (many envs
    keep the number of adds, and the fill time, small)."""
    obs_space = gym.spaces.Box(-1.0, 1.0, (4,), dtype=np.float32)
    buffer = ReplayBuffer(TRANSITIONS, num_envs, obs_space, gym.spaces.Discrete(2), prioritized=True)
    gen = torch.Generator().manual_seed(0)
    obs = torch.randn(num_envs, 4, generator=gen)
    for _ in range(buffer.rows):
        next_obs = torch.randn(num_envs, 4, generator=gen)
        done = torch.rand(num_envs, generator=gen) < 0.01
        buffer.add(obs, torch.randint(2, (num_envs,), generator=gen), torch.randn(num_envs, generator=gen),
                   next_obs, done, torch.zeros(num_envs, dtype=torch.bool))
        obs = next_obs
    return buffer


def run(quick: bool = False) -> Iterator[dict]:
    """``us_per_call`` times the prioritized sampler itself (stratified sample of a batch from
    the buffer's 1M-slot sum-tree, then the priority update), the part the reference replaces;
    ``buffer_us_per_call`` adds everything else ``ReplayBuffer.sample`` does (n-step windows,
    observation gathers, importance weights) and ``update_priorities``' bookkeeping."""
    seconds = 0.2 if quick else 3.0
    torch.set_num_threads(1)
    buffer = _filled_prioritized_buffer()
    tree = buffer.tree
    reference = ReferencePerSampleSumTree(tree.size)
    reference.fill(tree.get(torch.arange(tree.size)).numpy())
    rng = np.random.default_rng(0)
    for batch in (32, 256):
        priorities = torch.rand(batch)

        def sampler() -> None:
            tree.update(tree.sample(batch), (priorities.double() + buffer.priority_eps) ** buffer.alpha)

        def whole_buffer() -> None:
            buffer.update_priorities(buffer.sample(batch, beta=0.4).indices, priorities)

        ours_us = _us_per_call(sampler, seconds)
        baseline_us = _us_per_call(lambda: reference.sample_and_update(batch, rng), seconds)
        yield {"case": "per_sample", "batch": batch, "us_per_call": round(ours_us, 1),
               "baseline_us_per_call": round(baseline_us, 1), "ratio": round(baseline_us / ours_us, 2),
               "buffer_us_per_call": round(_us_per_call(whole_buffer, seconds), 1)}

    atari = gym.spaces.Box(0, 255, (4, 84, 84), dtype=np.uint8)
    actions = gym.spaces.Discrete(18)
    nbytes = ReplayBuffer.estimate_nbytes(TRANSITIONS, atari, actions, frame_stack=4)
    naive = TRANSITIONS * (2 * 4 * 84 * 84 + 8 + 4 + 2)  # obs and next_obs stacks, action, reward, flags
    yield {"case": "replay_memory", "transitions": TRANSITIONS, "bytes": nbytes,
           "gb": round(nbytes / 1e9, 3), "naive_bytes": naive, "naive_gb": round(naive / 1e9, 3)}


if __name__ == "__main__":
    import json
    for result in run(quick=True):
        print(json.dumps(result))
