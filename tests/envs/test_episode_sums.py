"""``EpisodeSums`` against a per-env loop, in numpy arrays and in tensors alike."""
import numpy as np
import pytest
import torch

from envs.episode_sums import EpisodeSums


def _brute_force_steps(num_envs: int, steps: int, seed: int):
    """Random steps of random env subsets, some of them first observations; the expected sums."""
    rng = np.random.default_rng(seed)
    returns, lengths = [0.0] * num_envs, [0] * num_envs
    for _ in range(steps):
        envs = rng.permutation(num_envs)[:rng.integers(1, num_envs + 1)]
        reward = rng.integers(-3, 4, len(envs)).astype(np.float32)
        first = rng.random(len(envs)) < 0.2
        reward[first] = 0.0
        ended = (rng.random(len(envs)) < 0.3) & ~first
        want_returns, want_lengths = [], []
        for row, env in enumerate(envs):
            returns[env] += float(reward[row])
            lengths[env] += 0 if first[row] else 1
            want_returns.append(returns[env])
            want_lengths.append(lengths[env])
            if ended[row]:
                returns[env], lengths[env] = 0.0, 0
        yield envs, reward, ended, ~first, want_returns, want_lengths


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_sums_of_env_subsets_match_a_per_env_loop(kind):
    as_kind = (lambda array: array) if kind == "numpy" else torch.from_numpy
    sums = EpisodeSums.zeros(5, torch.device("cpu"))
    if kind == "torch":
        sums = EpisodeSums(torch.zeros(5, dtype=torch.float64), torch.zeros(5, dtype=torch.int64))
    for envs, reward, ended, stepped, want_returns, want_lengths in _brute_force_steps(5, 400, seed=0):
        returns, lengths = sums.add(as_kind(reward), as_kind(ended), as_kind(envs), as_kind(stepped))
        assert np.asarray(returns).tolist() == want_returns and np.asarray(lengths).tolist() == want_lengths


def test_all_env_steps_restart_only_the_ended_sums_and_keep_returned_totals():
    sums = EpisodeSums.zeros(3, torch.device("cpu"))
    sums.add(np.array([1.0, 2.0, 3.0]), np.zeros(3, dtype=bool))
    returns, lengths = sums.add(np.array([1.0, 1.0, 1.0]), np.array([False, True, False]))
    assert returns.tolist() == [2.0, 3.0, 4.0] and lengths.tolist() == [2, 2, 2]
    returns_after, _ = sums.add(np.zeros(3), np.zeros(3, dtype=bool))
    assert returns_after.tolist() == [2.0, 0.0, 4.0] and returns.tolist() == [2.0, 3.0, 4.0]
    sums.zero()
    assert sums.returns.tolist() == [0.0] * 3 and sums.lengths.tolist() == [0] * 3
