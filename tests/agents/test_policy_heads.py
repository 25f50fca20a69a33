"""The policy heads' acting draw, greedy action and the losses' log-probability and entropy: what the full
distribution gives."""
import math

import pytest
import torch
from gymnasium import spaces

from agents.networks import CategoricalHead, GaussianHead


def test_categorical_sample_is_the_gumbel_max_of_its_exponential_draws_with_its_log_prob():
    logits = torch.randn(4_000, 5, generator=torch.Generator().manual_seed(0)) * 3
    torch.manual_seed(7)
    action, log_prob = CategoricalHead.sample(logits)
    torch.manual_seed(7)
    exponential = torch.empty(4_000, 5).exponential_()
    dist = CategoricalHead.distribution(logits)
    for row in range(4_000):
        scores = [float(dist.logits[row, a]) - math.log(float(exponential[row, a])) for a in range(5)]
        assert int(action[row]) == max(range(5), key=scores.__getitem__)
    torch.testing.assert_close(log_prob, dist.log_prob(action), rtol=0, atol=1e-6)
    assert action.shape == (4_000,) and action.dtype == torch.int64


def test_categorical_sample_frequencies_follow_the_softmax():
    logits = torch.tensor([[0.0, 1.0, 2.0]]).expand(200_000, 3)
    torch.manual_seed(0)
    action, _ = CategoricalHead.sample(logits)
    frequencies = torch.bincount(action, minlength=3).double() / len(action)
    torch.testing.assert_close(frequencies, torch.softmax(logits[0].double(), -1), rtol=0, atol=4e-3)


def test_gaussian_sample_is_the_distributions_draw_with_its_log_density():
    head = GaussianHead(8, spaces.Box(-1, 1, (3,)), log_std_init=-0.5)
    mean, log_std = head.dist_inputs(torch.randn(64, 8))
    torch.manual_seed(3)
    action, log_prob = GaussianHead.sample(mean, log_std)
    torch.manual_seed(3)
    dist = GaussianHead.distribution(mean, log_std)
    expected = dist.sample()
    assert torch.equal(action, expected)
    torch.testing.assert_close(log_prob, dist.log_prob(expected))


@pytest.mark.parametrize("shape", [(64, 5), (3, 16, 4)])  # one network's batch; K stacked seeds' batches
def test_categorical_log_prob_and_entropy_and_their_gradients_are_the_distributions(shape):
    generator = torch.Generator().manual_seed(1)
    logits = (torch.randn(shape, generator=generator) * 4).requires_grad_()
    action = torch.randint(0, shape[-1], shape[:-1], generator=generator)
    log_prob, entropy = CategoricalHead.log_prob_and_entropy(action, logits)
    (log_prob.square().sum() + entropy.sum()).backward()
    reference = logits.detach().clone().requires_grad_()
    dist = CategoricalHead.distribution(reference)
    torch.testing.assert_close(log_prob, dist.log_prob(action), rtol=0, atol=1e-6)
    torch.testing.assert_close(entropy, dist.entropy(), rtol=0, atol=1e-6)
    (dist.log_prob(action).square().sum() + dist.entropy().sum()).backward()
    torch.testing.assert_close(logits.grad, reference.grad, rtol=0, atol=1e-5)
    assert torch.equal(CategoricalHead.log_prob(action, logits), log_prob)  # on its own: the same ops


def test_gaussian_log_prob_and_entropy_are_the_distributions():
    head = GaussianHead(8, spaces.Box(-1, 1, (3,)), log_std_init=-0.5)
    mean, log_std = head.dist_inputs(torch.randn(64, 8))
    action = torch.randn(64, 3)
    log_prob, entropy = GaussianHead.log_prob_and_entropy(action, mean, log_std)
    dist = GaussianHead.distribution(mean, log_std)
    torch.testing.assert_close(log_prob, dist.log_prob(action))
    torch.testing.assert_close(entropy, dist.entropy())
    assert torch.equal(GaussianHead.log_prob(action, mean, log_std), log_prob)


def test_greedy_actions_are_the_distributions_modes():
    logits = torch.randn(500, 6, generator=torch.Generator().manual_seed(3)) * 4
    greedy = CategoricalHead.greedy(logits)
    for row in range(500):
        assert int(greedy[row]) == max(range(6), key=lambda a: float(logits[row, a]))
    assert torch.equal(greedy, CategoricalHead.distribution(logits).mode)
    head = GaussianHead(8, spaces.Box(-1, 1, (3,)), log_std_init=-0.5)
    mean, log_std = head.dist_inputs(torch.randn(64, 8))
    assert torch.equal(GaussianHead.greedy(mean, log_std), GaussianHead.distribution(mean, log_std).mode)
