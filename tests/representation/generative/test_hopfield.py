"""Hopfield network: Hebbian weights, the energy never rising, stored patterns as fixed points."""
from __future__ import annotations

import pytest
import torch

from representation.generative import HopfieldNetwork, hebbian_weights


def random_patterns(count: int, units: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (count, units), generator=generator).float() * 2 - 1


def test_hebbian_weights_match_the_sum_of_outer_products() -> None:
    patterns = random_patterns(3, 5, seed=0)
    expected = torch.zeros(5, 5)
    for p in patterns:
        for i in range(5):
            for j in range(5):
                if i != j:
                    expected[i, j] += p[i] * p[j] / 5
    assert torch.allclose(hebbian_weights(patterns), expected)


def test_energy_never_rises_under_random_asynchronous_updates() -> None:
    torch.manual_seed(0)
    network = HopfieldNetwork(32).store(random_patterns(6, 32, seed=1))
    states = random_patterns(64, 32, seed=2)
    generator = torch.Generator().manual_seed(3)
    start = energy = network.energy(states)
    for _ in range(200):
        states = network.update(states, steps=1, generator=generator)
        new_energy = network.energy(states)
        assert torch.all(new_energy <= energy + 1e-5)
        energy = new_energy
    assert bool((energy < start - 1.0).all())  # the updates did move every state downhill


def test_energy_of_a_state_matches_the_double_sum() -> None:
    network = HopfieldNetwork(4).store(random_patterns(2, 4, seed=4))
    state = torch.tensor([[1.0, -1.0, -1.0, 1.0]])
    expected = -0.5 * sum(network.weight[i, j] * state[0, i] * state[0, j] for i in range(4) for j in range(4))
    assert torch.allclose(network.energy(state), expected.reshape(1))


def test_stored_patterns_are_fixed_points_and_are_recalled() -> None:
    patterns = random_patterns(4, 100, seed=5)  # load 0.04, well under the 0.14 capacity
    network = HopfieldNetwork(100).store(patterns)
    assert bool(network.is_fixed_point(patterns).all())
    assert torch.equal(network.update(patterns, steps=500), patterns)
    corrupted = patterns.clone()
    corrupted[:, :15] *= -1  # 15 of 100 units flipped
    assert torch.equal(network.recall(corrupted, generator=torch.Generator().manual_seed(6)), patterns)


def test_fit_through_the_shared_loop_is_hebbs_rule() -> None:
    patterns = random_patterns(5, 20, seed=7)
    network = HopfieldNetwork(20).fit(patterns, epochs=1, batch_size=2, progress=False, seed=0)
    assert torch.allclose(network.weight, hebbian_weights(patterns), atol=1e-6)
    samples = network.sample(8)
    assert bool(network.is_fixed_point(samples).all())
    with pytest.raises(ValueError, match="-1 and \\+1"):
        network.fit(torch.zeros(2, 20), progress=False)
