"""RBM: free energy and partition function by enumeration, the CD-k gradient, learning patterns."""
from __future__ import annotations

import math

import pytest
import torch

from representation.generative import RBM
from representation.generative.rbm import binary_configurations


def small_rbm(seed: int = 0) -> RBM:
    torch.manual_seed(seed)
    rbm = RBM(num_visible=4, num_hidden=3, k=2)
    with torch.no_grad():
        rbm.weight.normal_()
        rbm.visible_bias.normal_()
        rbm.hidden_bias.normal_()
    return rbm


def test_binary_configurations_enumerate_all_vectors() -> None:
    assert binary_configurations(2).tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]


def test_free_energy_matches_enumeration_over_hidden_units() -> None:
    rbm = small_rbm()
    visibles = binary_configurations(4)
    hiddens = binary_configurations(3)
    brute_force = torch.stack([
        -torch.logsumexp(-rbm.energy(v.expand(8, 4), hiddens), dim=0) for v in visibles])
    assert torch.allclose(rbm.free_energy(visibles), brute_force, atol=1e-5)


def test_log_partition_matches_enumeration_over_all_states() -> None:
    rbm = small_rbm(1)
    negative_energies = [-rbm.energy(v[None], h[None])[0]
                         for v in binary_configurations(4) for h in binary_configurations(3)]
    assert torch.allclose(rbm.log_partition(), torch.logsumexp(torch.stack(negative_energies), 0), atol=1e-5)
    total = rbm.log_likelihood(binary_configurations(4)).exp().sum()
    assert math.isclose(total.item(), 1.0, rel_tol=1e-5)
    with pytest.raises(ValueError, match="<= 20 visible units"):
        RBM(21).log_partition()


def test_cd_loss_gradient_is_the_contrastive_divergence_update() -> None:
    # d/dW [F(v0) - F(vk)] = -(p(h|v0) v0^T - p(h|vk) vk^T), averaged (Hinton 2002, Eq. 5 with CD).
    rbm = small_rbm(2)
    data = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 0.0]])
    torch.manual_seed(3)
    loss, _ = rbm.loss(data, None)
    loss.backward()
    torch.manual_seed(3)
    negative = rbm.gibbs(data, rbm.k)
    positive_stats = rbm.hidden_probabilities(data).T @ data / 2
    negative_stats = rbm.hidden_probabilities(negative).T @ negative / 2
    assert torch.allclose(rbm.weight.grad, -(positive_stats - negative_stats), atol=1e-6)
    assert torch.allclose(rbm.visible_bias.grad, -(data.mean(0) - negative.mean(0)), atol=1e-6)


def test_cd_training_puts_the_probability_mass_on_the_data() -> None:
    patterns = torch.tensor([[1, 1, 1, 0, 0, 0, 1, 0], [0, 0, 0, 1, 1, 1, 0, 1], [1, 0, 1, 0, 1, 0, 1, 0]]).float()
    data = patterns.repeat(40, 1)
    torch.manual_seed(0)
    rbm = RBM(8, num_hidden=8, k=1)
    mass_before = rbm.log_likelihood(patterns).exp().sum().item()
    rbm.fit(data, epochs=100, batch_size=20, lr=0.2, progress=False, seed=0)
    mass_after = rbm.log_likelihood(patterns).exp().sum().item()
    # p(data patterns) starts near 3/256; over seeds 0-2 training reaches 0.87-0.93.
    assert mass_before < 0.05 and mass_after > 0.6
    samples = rbm.sample(300, steps=50)
    assert (samples[:, None, :] == patterns[None]).all(dim=2).any(dim=1).float().mean() > 0.6
    with pytest.raises(ValueError, match="only 0 and 1"):
        rbm.fit(2 * data, progress=False)
