"""The auxiliary glue with a stand-in agent: every objective on every encoder, joint and separate."""
import math

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import nn

from agents.auxiliary import Auxiliary
from agents.config import AgentConfig
from replay import Batch
from representation.encoders import make_encoder

VECTOR = spaces.Box(-1.0, 1.0, (4,), np.float32)
IMAGES = spaces.Box(0, 255, (4, 36, 36), np.uint8)
ACTIONS = spaces.Discrete(3)
SMALL = {"mlp": {"hidden_sizes": [16]}, "nature": {"features_dim": 32}, "impala": {"channels": [4, 8], "features_dim": 32}}


class StandInAgent(nn.Module):
    """A value head trained on detached features, so only the auxiliary loss moves the encoder."""

    def __init__(self, config: AgentConfig, observation_space: spaces.Space, frozen: bool = False):
        super().__init__()
        self.encoder = make_encoder(config.encoder, observation_space, **config.encoder_options)
        if frozen:
            self.encoder.requires_grad_(False)
        self.head = nn.Linear(self.encoder.out_dim, 1)
        self.aux = Auxiliary.from_config(config, self.encoder, observation_space, ACTIONS, "cpu")
        params = [p for p in self.parameters() if p.requires_grad and not any(p is q for q in self.aux.parameters())]
        self.optimizer = torch.optim.Adam(params + self.aux.parameters_for_agent_optimizer(), lr=1e-3)

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        value_loss = (self.head(self.encoder(batch.obs).detach()).squeeze(1) - batch.reward).square().mean()
        aux_loss, metrics = self.aux.joint_loss(batch)
        self.optimizer.zero_grad()
        (value_loss + aux_loss).backward()
        self.optimizer.step()
        metrics.update(self.aux.separate_step(batch) or {})
        self.aux.after_update()
        return metrics


def random_batch(space: spaces.Box, size: int = 8) -> Batch:
    generator = torch.Generator().manual_seed(0)
    if space.dtype == np.uint8:
        obs = torch.randint(0, 256, (2 * size, *space.shape), dtype=torch.uint8, generator=generator)
    else:
        obs = torch.rand(2 * size, *space.shape, generator=generator) * 2 - 1
    return Batch(obs=obs[:size], next_obs=obs[size:], action=torch.randint(3, (size,), generator=generator),
                 reward=torch.randn(size, generator=generator), terminated=torch.zeros(size))


CASES = [(aux, encoder) for aux in ("curl", "deepmdp", "dbc") for encoder in ("mlp", "nature", "impala")]


@pytest.mark.parametrize("aux, encoder", CASES)
@pytest.mark.parametrize("mode", ["joint", "separate"])
@pytest.mark.parametrize("frozen", [False, True], ids=["trained", "frozen"])
def test_each_objective_on_each_encoder_updates_only_a_trainable_encoder(aux, encoder, mode, frozen):
    torch.manual_seed(0)
    space = VECTOR if encoder == "mlp" else IMAGES
    config = AgentConfig(aux=aux, aux_mode=mode, encoder=encoder, encoder_options=SMALL[encoder])
    agent = StandInAgent(config, space, frozen=frozen)
    before = [p.clone() for p in agent.encoder.parameters()]
    objective_before = [p.clone() for p in agent.aux.objectives.parameters() if p.requires_grad]

    metrics = agent.update(random_batch(space))

    assert metrics and all(math.isfinite(float(value)) for value in metrics.values())
    changed = [not torch.equal(old, new) for old, new in zip(before, agent.encoder.parameters())]
    assert any(changed) != frozen
    assert any(not torch.equal(old, new) for old, new in
               zip(objective_before, [p for p in agent.aux.objectives.parameters() if p.requires_grad]))


def test_separate_mode_steps_every_aux_every_calls_and_joint_loss_is_zero():
    config = AgentConfig(aux="deepmdp", aux_mode="separate", aux_every=2, encoder="mlp")
    agent = StandInAgent(config, VECTOR)
    batch = random_batch(VECTOR)
    loss, metrics = agent.aux.joint_loss(batch)
    assert loss.item() == 0.0 and metrics == {}
    assert agent.aux.parameters_for_agent_optimizer() == []
    assert agent.aux.separate_step(batch) is None
    assert "aux/deepmdp_loss" in agent.aux.separate_step(batch)


def test_joint_loss_is_the_coefficient_times_the_sum_of_the_objectives():
    torch.manual_seed(0)
    config = AgentConfig(aux="deepmdp,curl", aux_coef=0.5, encoder="mlp",
                         aux_options={"curl": {"noise_std": 0.0}})
    agent = StandInAgent(config, VECTOR)
    batch = random_batch(VECTOR)
    loss, metrics = agent.aux.joint_loss(batch)
    expected = sum(objective.loss(batch, agent.encoder)[0] for objective in agent.aux.objectives.values())
    assert loss.item() == pytest.approx(0.5 * expected.item(), rel=1e-6)
    assert {"aux/curl_loss", "aux/deepmdp_loss"} <= set(metrics)


def test_objectives_are_saved_with_the_agent_but_the_encoder_only_once():
    agent = StandInAgent(AgentConfig(aux="curl", encoder="mlp"), VECTOR)
    keys = set(agent.state_dict())
    assert "aux.objectives.curl.bilinear" in keys and "aux.objectives.curl.key_encoder.net.0.weight" in keys
    assert not any(key.startswith("aux.encoder") for key in keys)


def test_training_state_round_trips_the_separate_optimiser():
    config = AgentConfig(aux="dbc", aux_mode="separate", encoder="mlp")
    agent = StandInAgent(config, VECTOR)
    agent.aux.separate_step(random_batch(VECTOR))
    state = agent.aux.training_state()
    fresh = StandInAgent(config, VECTOR)
    fresh.aux.load_training_state(state)
    assert fresh.aux.calls == 1
    assert fresh.aux.optimizer.state_dict()["state"][0]["step"] == state["optimizer"]["state"][0]["step"]


def test_needs_next_obs_and_gamma_from_the_agent():
    class WithGamma(AgentConfig):
        gamma = 0.8

    config = WithGamma(aux="dbc", encoder="mlp")
    encoder = make_encoder("mlp", VECTOR)
    aux = Auxiliary.from_config(config, encoder, VECTOR, ACTIONS, "cpu")
    assert aux.needs_next_obs and aux.objectives["dbc"].gamma == 0.8
    assert not Auxiliary.from_config(AgentConfig(aux="curl"), encoder, VECTOR, ACTIONS, "cpu").needs_next_obs
    assert Auxiliary.from_config(AgentConfig(), encoder, VECTOR, ACTIONS, "cpu") is None


@pytest.mark.parametrize("settings, message", [
    ({"aux": "byol"}, "unknown auxiliary objective 'byol'"),
    ({"aux": "curl,none"}, "cannot be combined"),
    ({"aux": "curl,curl"}, "twice"),
    ({"aux": "curl", "aux_options": {"dbc": {}}}, "not in --aux: dbc"),
    ({"aux": "curl", "aux_options": {"curl": {"momentum": 0.9}}}, "bad options"),
    ({"aux": "curl", "aux_options": {"curl": 0.9}}, "must be a dict"),
])
def test_bad_settings_raise_one_line_value_errors(settings, message):
    with pytest.raises(ValueError, match=message):
        Auxiliary.from_config(AgentConfig(**settings), make_encoder("mlp", VECTOR), VECTOR, ACTIONS, "cpu")


@pytest.mark.parametrize("aux, options", [("dbc", {}), ("deepmdp", {"deepmdp": {"stop_gradient_target": False}}),
                                          ("deepmdp", {})])
def test_sharing_the_agents_encoder_pass_gives_the_gradient_of_two_passes(aux, options):
    torch.manual_seed(0)
    config = AgentConfig(aux=aux, encoder="mlp", aux_options=options)
    agent = StandInAgent(config, VECTOR)
    batch = random_batch(VECTOR)

    def encoder_gradient(share: bool) -> list[torch.Tensor]:
        agent.optimizer.zero_grad()
        value_loss = agent.head(agent.encoder(batch.obs)).square().mean()  # the gradient reaches the encoder
        if not share:
            agent.aux.agent_latent.forget()
        torch.manual_seed(1)  # dbc's pairing and sampled next latents
        aux_loss, _ = agent.aux.joint_loss(batch)
        (value_loss + aux_loss).backward()
        return [p.grad.clone() for p in agent.encoder.parameters()]

    for shared, separate in zip(encoder_gradient(share=True), encoder_gradient(share=False)):
        # The two ways sum in different orders: equal up to float32 rounding of the whole tensor.
        assert (shared - separate).norm() <= 1e-5 * separate.norm()


def test_only_an_autograd_pass_on_the_batchs_own_tensor_is_shared():
    agent = StandInAgent(AgentConfig(aux="dbc", encoder="mlp"), VECTOR)
    batch = random_batch(VECTOR)
    with torch.no_grad():
        agent.encoder(batch.obs)
    assert agent.aux.agent_latent.take(batch.obs) is None
    agent.encoder(batch.obs.clone())
    assert agent.aux.agent_latent.take(batch.obs) is None
    latent = agent.encoder(batch.obs)
    assert agent.aux.agent_latent.take(batch.obs) is latent
    assert agent.aux.agent_latent.take(batch.obs) is None  # taken once
