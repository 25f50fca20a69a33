"""DBC: the bisimulation target and loss against hand computations and brute-force references."""
import numpy as np
import pytest
import torch
from gymnasium import spaces

from replay import Batch
from replay.replay_buffer import ReplayBuffer
from representation.aux import DBC, gaussian_w2, make_aux
from representation.aux.base import action_features
from representation.encoders import MLPEncoder

STATES = spaces.Box(-1.0, 1.0, (4,), np.float32)
ACTIONS = spaces.Discrete(3)


def make_dbc(gamma: float = 0.9) -> tuple[DBC, MLPEncoder]:
    torch.manual_seed(0)
    encoder = MLPEncoder(STATES, hidden_sizes=(8,))
    return DBC(encoder, STATES, ACTIONS, gamma=gamma, hidden_dim=16), encoder


def test_target_distance_of_identical_states_is_zero():
    dbc, encoder = make_dbc()
    latent = encoder(torch.randn(1, 4)).detach().repeat(2, 1)
    action = action_features(torch.tensor([1, 1]), ACTIONS)
    target = dbc.bisimulation_target(latent, action, torch.tensor([0.7, 0.7]), torch.tensor([1, 0]))
    # Equal up to BLAS rounding of the two (identical) rows, which the W2's square root magnifies.
    torch.testing.assert_close(target, torch.zeros(2), atol=1e-6, rtol=0)


def test_target_distance_with_identical_dynamics_is_the_reward_gap():
    dbc, encoder = make_dbc()
    latent = encoder(torch.randn(1, 4)).detach().repeat(2, 1)
    action = action_features(torch.tensor([2, 2]), ACTIONS)
    target = dbc.bisimulation_target(latent, action, torch.tensor([1.5, -0.25]), torch.tensor([1, 0]))
    torch.testing.assert_close(target, torch.tensor([1.75, 1.75]))


def test_target_adds_gamma_times_the_w2_of_the_predicted_next_latents():
    dbc, encoder = make_dbc(gamma=0.5)
    latent = encoder(torch.randn(2, 4)).detach()
    action = action_features(torch.tensor([0, 2]), ACTIONS)
    mean, std = dbc.transition_model(torch.cat([latent, action], dim=1))
    w2 = ((mean[0] - mean[1]).square().sum() + (std[0] - std[1]).square().sum()).sqrt()
    target = dbc.bisimulation_target(latent, action, torch.tensor([1.0, 3.0]), torch.tensor([1, 0]))
    torch.testing.assert_close(target, (2.0 + 0.5 * w2).detach().repeat(2))


def test_transitions_of_k_steps_discount_the_w2_by_gamma_to_the_k():
    """n-step replay: a transition summing k rewards ends k steps later, so the W2 term of the
    k-step metric is discounted by gamma ** k."""
    dbc, encoder = make_dbc(gamma=0.5)
    latent = encoder(torch.randn(3, 4)).detach()
    action = action_features(torch.tensor([0, 2, 1]), ACTIONS)
    mean, std = dbc.transition_model(torch.cat([latent, action], dim=1))
    partner = torch.tensor([1, 2, 0])
    w2 = ((mean - mean[partner]).square().sum(1) + (std - std[partner]).square().sum(1)).sqrt()
    reward = torch.tensor([1.0, 3.0, 0.5])
    target = dbc.bisimulation_target(latent, action, reward, partner, reward_steps=torch.tensor([1, 3, 2]))
    expected = (reward - reward[partner]).abs() + torch.tensor([0.5, 0.125, 0.25]) * w2
    torch.testing.assert_close(target, expected.detach())


def test_the_loss_reads_the_steps_of_n_step_replay_batches():
    dbc, encoder = make_dbc(gamma=0.5)
    buffer = ReplayBuffer(100, 1, STATES, ACTIONS, n_step=3, gamma=0.9)
    generator = torch.Generator().manual_seed(3)
    for step in range(30):
        ended = torch.tensor([step % 7 == 6])
        buffer.add(torch.rand(1, 4, generator=generator), torch.tensor([step % 3]), torch.ones(1),
                   torch.rand(1, 4, generator=generator), ended, torch.tensor([False]))
    batch = buffer.sample(64, generator=generator)
    assert set(batch.reward_steps.tolist()) == {1, 2, 3}  # windows cut short by episode ends
    torch.manual_seed(5)
    _, metrics = dbc.loss(batch, encoder)
    torch.manual_seed(5)  # the same partners: the loss under the k-step discounts, not gamma alone
    latent = encoder(batch.obs)
    partner = torch.randperm(64)
    target = dbc.bisimulation_target(latent.detach(), action_features(batch.action, ACTIONS), batch.reward, partner,
                                     batch.reward_steps)
    expected = ((latent - latent[partner]).abs().sum(1) - target).square().mean()
    torch.testing.assert_close(metrics["aux/dbc_bisim_loss"], expected.detach())


def test_gaussian_w2_matches_the_quantile_integral():
    """W2^2 = int_0^1 ||F_i^-1(u) - F_j^-1(u)||^2 du; the quantiles of a diagonal Gaussian are mean + std * ndtri(u)."""
    mean_i, std_i = torch.tensor([[0.3, -1.0]], dtype=torch.float64), torch.tensor([[0.5, 2.0]], dtype=torch.float64)
    mean_j, std_j = torch.tensor([[1.0, 0.0]], dtype=torch.float64), torch.tensor([[1.5, 0.25]], dtype=torch.float64)
    u = (torch.arange(200_000, dtype=torch.float64) + 0.5) / 200_000
    z = torch.special.ndtri(u)
    squared = sum(((mean_i[0, d] + std_i[0, d] * z) - (mean_j[0, d] + std_j[0, d] * z)).square().mean() for d in range(2))
    assert gaussian_w2(mean_i, std_i, mean_j, std_j).item() == pytest.approx(squared.sqrt().item(), rel=1e-4)


def test_bisimulation_loss_regresses_the_l1_latent_distance_on_the_target():
    dbc, encoder = make_dbc()
    generator = torch.Generator().manual_seed(0)
    batch = Batch(obs=torch.randn(6, 4, generator=generator), action=torch.randint(3, (6,), generator=generator),
                  reward=torch.randn(6, generator=generator), next_obs=torch.randn(6, 4, generator=generator))
    torch.manual_seed(7)
    _, metrics = dbc.loss(batch, encoder)
    torch.manual_seed(7)
    partner = torch.randperm(6)  # the loss's first random draw
    with torch.no_grad():
        latent = encoder(batch.obs)
        target = dbc.bisimulation_target(latent, action_features(batch.action, ACTIONS), batch.reward, partner)
    expected = 0.0
    for i in range(6):
        j = int(partner[i])
        distance = sum(abs(a - b) for a, b in zip(latent[i].tolist(), latent[j].tolist()))
        expected += (distance - target[i].item()) ** 2
    assert metrics["aux/dbc_bisim_loss"].item() == pytest.approx(expected / 6, rel=1e-5)


def test_models_train_and_gamma_is_validated():
    dbc, encoder = make_dbc()
    batch = Batch(obs=torch.randn(8, 4), action=torch.randint(3, (8,)), reward=torch.randn(8), next_obs=torch.randn(8, 4))
    loss, metrics = dbc.loss(batch, encoder)
    loss.backward()
    assert torch.isfinite(loss) and set(metrics) >= {"aux/dbc_transition_loss", "aux/dbc_reward_loss"}
    assert dbc.transition_model.net[0].weight.grad.abs().sum() > 0
    assert dbc.reward_model[0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="gamma must be in"):
        make_aux("dbc", encoder, STATES, ACTIONS, gamma=1.5)
