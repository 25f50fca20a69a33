"""Any deep agent x any encoder x any auxiliary objective: one update trains the shared encoder
with finite losses, and leaves a frozen one alone."""
import math

import pytest
import torch

from agents.registry import agent_class
from replay import Batch

DEEP_AGENTS = ["dqn", "ppo", "a2c", "reinforce", "trpo", "sac"]
ENCODERS = {"mlp": "CartPole-v1", "nature": "reprl/DistractorCartPole-v0", "impala": "reprl/DistractorCartPole-v0"}
OBJECTIVES = ["curl", "deepmdp", "dbc"]


def full_batch(agent, size: int = 8) -> Batch:
    """Every field any agent reads, with plausible values."""
    generator = torch.Generator().manual_seed(0)
    space = agent.observation_space
    if space.dtype == torch.uint8 or str(space.dtype) == "uint8":
        obs = torch.randint(0, 256, (size, *space.shape), dtype=torch.uint8, generator=generator)
        next_obs = torch.randint(0, 256, (size, *space.shape), dtype=torch.uint8, generator=generator)
    else:
        obs, next_obs = torch.randn(size, *space.shape, generator=generator), torch.randn(size, *space.shape)
    action = torch.randint(0, int(agent.action_space.n), (size,), generator=generator)
    rand = torch.rand(size, generator=generator)
    return Batch(obs=obs, action=action, reward=rand, next_obs=next_obs, terminated=torch.zeros(size),
                 discount=torch.full((size,), 0.99), weights=torch.ones(size), indices=torch.arange(size),
                 log_prob=torch.full((size,), -math.log(2)), value=rand.clone(), advantage=torch.randn(size),
                 returns=rand + 1.0, next_action=action.clone())


def encoder_after_one_update(name: str, encoder: str, objective: str, freeze: bool):
    options = {"encoder_options": {"hidden_sizes": [32]}} if encoder == "mlp" else {}
    if encoder == "impala":
        options = {"encoder_options": {"channels": [8, 8], "features_dim": 32}}
    agent = agent_class(name).from_env(ENCODERS[encoder], encoder=encoder, aux=objective, freeze_encoder=freeze,
                                       preset="none", torch_threads=1, **options)
    shaped = agent.aux.encoder
    before = [p.detach().clone() for p in shaped.parameters()]
    metrics = agent.update(full_batch(agent))
    assert all(math.isfinite(float(v)) for v in metrics.values()), metrics
    assert any(key.startswith(f"aux/{objective}") for key in metrics), sorted(metrics)
    return before, [p.detach() for p in shaped.parameters()]


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("encoder", list(ENCODERS))
@pytest.mark.parametrize("name", DEEP_AGENTS)
def test_one_update_trains_the_encoder(name, encoder, objective):
    before, after = encoder_after_one_update(name, encoder, objective, freeze=False)
    assert any(not torch.equal(a, b) for a, b in zip(before, after))


@pytest.mark.parametrize("name", DEEP_AGENTS)
def test_a_frozen_encoder_does_not_move(name):
    before, after = encoder_after_one_update(name, "mlp", "deepmdp", freeze=True)
    assert all(torch.equal(a, b) for a, b in zip(before, after))
