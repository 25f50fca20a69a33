"""Any deep agent x any encoder x any auxiliary objective: one update trains the shared encoder
with finite losses, and leaves a frozen one alone."""
import json
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


@pytest.mark.parametrize("name", DEEP_AGENTS)
def test_the_objective_shares_the_agents_own_encoder_pass(name, monkeypatch):
    """In joint mode the objective is handed phi(batch.obs) from the agent's loss, not None."""
    from representation.aux.dbc import DBC

    handed = []
    original = DBC.loss
    monkeypatch.setattr(DBC, "loss", lambda self, batch, encoder, latent=None:
                        handed.append(latent) or original(self, batch, encoder, latent))
    agent = agent_class(name).from_env("CartPole-v1", aux="dbc", preset="none", torch_threads=1,
                                       encoder_options={"hidden_sizes": [32]})
    batch = full_batch(agent)
    with torch.no_grad():
        expected = agent.aux.encoder(batch.obs)
    agent.update(batch)
    assert handed and handed[0] is not None and handed[0].requires_grad
    torch.testing.assert_close(handed[0].detach(), expected, rtol=0, atol=0)


@pytest.mark.parametrize("name, share_anchor, passes", [("dqn", True, 1), ("sac", True, 1), ("dqn", False, 2),
                                                          ("ppo", True, 2)])
def test_curl_shares_its_query_with_off_policy_agents_only(name, share_anchor, passes):
    """Off-policy agents train on CURL's query view, so the query is their own encoder pass."""
    agent = agent_class(name).from_env("CartPole-v1", aux="curl", preset="none", torch_threads=1,
                                       encoder_options={"hidden_sizes": [32]},
                                       aux_options={"curl": {"share_anchor": share_anchor}})
    batch = full_batch(agent)
    autograd_inputs = []
    agent.aux.encoder.register_forward_hook(
        lambda module, inputs, output: autograd_inputs.append(inputs[0]) if output.requires_grad else None)
    agent.update(batch)
    assert len(autograd_inputs) == passes
    assert all(x is not batch.obs for x in autograd_inputs) == (name != "ppo" and share_anchor)


@pytest.mark.parametrize("objective", ["deepmdp", "dbc"])
@pytest.mark.parametrize("name", ["ppo", "a2c", "reinforce", "trpo"])
def test_on_policy_rollouts_give_the_objective_what_it_reads(name, objective, tmp_path):
    """A short training run: the batches an on-policy agent builds from its rollouts carry the
    rewards and next observations DeepMDP's and DBC's models train on."""
    from agents.runner import Runner

    agent = agent_class(name).from_env("CartPole-v1", aux=objective, steps=512, num_envs=2, num_steps=64,
                                       eval_every=0, checkpoint_every=0, log_every=128, torch_threads=1,
                                       encoder_options={"hidden_sizes": [32]})
    Runner(agent, run_dir=tmp_path, progress=False).run()
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [row[f"aux/{objective}_loss"] for row in logged if f"aux/{objective}_loss" in row]
    assert losses and all(math.isfinite(value) for value in losses)
