"""The policy heads' acting draw: the action and log-probability the full distribution gives."""
import torch
from gymnasium import spaces

from agents.networks import CategoricalHead, GaussianHead


def test_categorical_sample_is_the_distributions_draw_with_its_log_prob():
    logits = torch.randn(4_000, 5, generator=torch.Generator().manual_seed(0)) * 3
    torch.manual_seed(7)
    action, log_prob = CategoricalHead.sample(logits)
    torch.manual_seed(7)
    dist = CategoricalHead.distribution(logits)
    assert torch.equal(action, dist.sample())
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
