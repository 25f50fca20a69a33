"""DeepMDP: the losses vanish on an MDP whose latent model is exactly representable."""
import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import nn

from replay import Batch
from representation.aux import DeepMDP, make_aux
from representation.aux.deepmdp import lipschitz_penalty
from representation.encoders import Encoder, MLPEncoder

STATES = spaces.Box(-10.0, 10.0, (3,), np.float32)
ACTIONS = spaces.Discrete(3)


class LinearEncoder(Encoder):
    def __init__(self, dim: int):
        super().__init__()
        self.linear = nn.Linear(dim, dim)
        self.out_dim = dim

    def forward(self, obs):
        return self.linear(obs)


def synthetic_batch(generator: torch.Generator, size: int = 128) -> Batch:
    """s' = s + c_a, r = w.s + b_a: with a linear encoder the latent model is exact."""
    shifts = torch.tensor([[0.5, 0.0, -0.5], [0.0, 0.5, 0.5], [-0.5, -0.5, 0.0]])
    w, b = torch.tensor([1.0, -0.5, 0.25]), torch.tensor([0.0, 1.0, -1.0])
    obs = torch.randn(size, 3, generator=generator)
    action = torch.randint(3, (size,), generator=generator)
    return Batch(obs=obs, action=action, reward=obs @ w + b[action], next_obs=obs + shifts[action],
                 terminated=torch.zeros(size))


def train(objective: DeepMDP, encoder: Encoder, steps: int) -> dict:
    optimizer = torch.optim.Adam(list(encoder.parameters()) + list(objective.parameters()), lr=2e-3)
    generator = torch.Generator().manual_seed(1)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    for _ in range(steps):
        loss, metrics = objective.loss(synthetic_batch(generator), encoder)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    with torch.no_grad():
        return {name: value.item() for name, value in objective.loss(synthetic_batch(generator, 1024), encoder)[1].items()}


def test_losses_vanish_when_the_latent_model_is_representable():
    torch.manual_seed(0)
    encoder = LinearEncoder(3)
    objective = DeepMDP(encoder, STATES, ACTIONS, hidden_dim=64)
    with torch.no_grad():
        initial = {name: value.item() for name, value in objective.loss(
            synthetic_batch(torch.Generator().manual_seed(2), 1024), encoder)[1].items()}
    final = train(objective, encoder, 1500)
    assert initial["aux/deepmdp_reward_loss"] > 0.5
    assert final["aux/deepmdp_reward_loss"] < 0.03
    assert final["aux/deepmdp_transition_loss"] < 0.03
    # Not by collapsing the latent space: it still separates states.
    states = torch.randn(256, 3, generator=torch.Generator().manual_seed(3))
    assert encoder(states).std(dim=0).min() > 0.1


def test_reward_and_transition_losses_are_the_papers_l1_and_l2():
    torch.manual_seed(0)
    encoder = LinearEncoder(3)
    objective = DeepMDP(encoder, STATES, ACTIONS, hidden_dim=8, reward_coef=2.0, transition_coef=3.0)
    batch = synthetic_batch(torch.Generator().manual_seed(0), 4)
    loss, metrics = objective.loss(batch, encoder)
    with torch.no_grad():
        inputs = torch.cat([encoder(batch.obs), nn.functional.one_hot(batch.action, 3).float()], dim=1)
        reward_error = objective.reward_model(inputs).squeeze(1) - batch.reward
        transition_error = objective.transition_model(inputs) - encoder(batch.next_obs)
    reward_loss = sum(abs(e) for e in reward_error.tolist()) / 4
    transition_loss = sum(sum(x * x for x in row) ** 0.5 for row in transition_error.tolist()) / 4
    assert metrics["aux/deepmdp_reward_loss"].item() == pytest.approx(reward_loss, rel=1e-5)
    assert metrics["aux/deepmdp_transition_loss"].item() == pytest.approx(transition_loss, rel=1e-5)
    assert loss.item() == pytest.approx(2 * reward_loss + 3 * transition_loss, rel=1e-5)


def test_stop_gradient_target_keeps_gradient_off_the_next_latent():
    encoder = LinearEncoder(3)
    objective = DeepMDP(encoder, STATES, ACTIONS, hidden_dim=8, reward_coef=0.0, stop_gradient_target=True)
    batch = synthetic_batch(torch.Generator().manual_seed(0), 4)
    batch = Batch(obs=torch.zeros(4, 3), action=batch.action, reward=batch.reward, next_obs=batch.next_obs)
    objective.loss(batch, encoder)[0].backward()
    # obs are zeros, so a weight gradient could only come from phi(s').
    assert encoder.linear.weight.grad.abs().max() == 0


@pytest.mark.parametrize("slope, expected", [(2.0, 1.0), (3.0, 4.0), (0.5, 0.0)])
def test_lipschitz_penalty_is_the_squared_excess_gradient_norm(slope, expected):
    direction = torch.tensor([0.6, 0.8])
    points = torch.randn(7, 2)
    assert lipschitz_penalty(lambda x: slope * (x @ direction), points).item() == pytest.approx(expected)


def test_gradient_penalty_is_reported_and_differentiable():
    encoder = LinearEncoder(3)
    objective = DeepMDP(encoder, STATES, ACTIONS, hidden_dim=8, gradient_penalty=10.0)
    loss, metrics = objective.loss(synthetic_batch(torch.Generator().manual_seed(0), 8), encoder)
    loss.backward()
    assert metrics["aux/deepmdp_gradient_penalty"] >= 0
    assert objective.transition_model[0].weight.grad is not None


def test_needs_next_obs_and_a_supported_action_space():
    encoder = MLPEncoder(STATES, hidden_sizes=(4,))
    objective = make_aux("deepmdp", encoder, STATES, ACTIONS)
    with pytest.raises(ValueError, match="needs next_obs"):
        objective.loss(Batch(obs=torch.zeros(2, 3), action=torch.zeros(2), reward=torch.zeros(2)), encoder)
    with pytest.raises(ValueError, match="Discrete or 1-D Box action space"):
        make_aux("deepmdp", encoder, STATES, spaces.MultiDiscrete([2, 2]))
    with pytest.raises(ValueError, match="reward_coef must be >= 0"):
        make_aux("deepmdp", encoder, STATES, ACTIONS, reward_coef=-1.0)
