"""``--encoder-checkpoint`` also takes an agent file or a run's checkpoint: the new agent starts
from the encoder of the agent in it."""
import pytest
import torch

from agents.registry import agent_class

SMALL = {"encoder_options": {"hidden_sizes": [16]}, "torch_threads": 1}


@pytest.mark.parametrize("name, encoder_of", [
    ("dqn", lambda agent: agent.q.encoder), ("sac", lambda agent: agent.encoder),
    ("ppo", lambda agent: agent.net.encoder), ("trpo", lambda agent: agent.net.encoder),
])
def test_an_agent_starts_from_the_encoder_of_a_saved_agent(name, encoder_of, tmp_path):
    source = agent_class(name).from_env("CartPole-v1", seed=3, **SMALL)
    with torch.no_grad():  # weights no fresh encoder of either agent would have
        for parameter in encoder_of(source).parameters():
            parameter.add_(1.0)
    source.save(tmp_path / "source.pt")
    agent = agent_class("ppo").from_env("CartPole-v1", encoder_checkpoint=str(tmp_path / "source.pt"),
                                        freeze_encoder=True, seed=0)
    expected = encoder_of(source).state_dict()
    for encoder in (agent.net.encoder, agent.net.critic_encoder):
        loaded = encoder.state_dict()
        assert loaded.keys() == expected.keys() and all(torch.equal(loaded[k], expected[k]) for k in expected)
    assert (agent.config.encoder, agent.config.encoder_options) == ("mlp", {"hidden_sizes": [16]})


@pytest.mark.parametrize("make_source, message", [
    (lambda path: agent_class("qlearning").from_env("FrozenLake-v1").save(path), "a qlearning agent has no encoder"),
    (lambda path: torch.save({"format": "something-else"}, path),
     "is neither a reprl encoder file nor an agent file or run checkpoint"),
])
def test_sources_without_an_encoder_are_refused(make_source, message, tmp_path):
    make_source(tmp_path / "source.pt")
    with pytest.raises(ValueError, match=message):
        agent_class("dqn").from_env("CartPole-v1", encoder_checkpoint=str(tmp_path / "source.pt"))


def test_an_encoder_for_other_observations_names_the_mismatch(tmp_path):
    agent_class("ppo").from_env("CartPole-v1", **SMALL).save(tmp_path / "cartpole.pt")
    with pytest.raises(ValueError) as error:  # Acrobot's observations have 6 values, CartPole's 4
        agent_class("ppo").from_env("Acrobot-v1", encoder_checkpoint=str(tmp_path / "cartpole.pt"))
    assert str(error.value).endswith("does not fit this observation space: size mismatch for net.0.weight: copying "
                                     "a param with shape torch.Size([16, 4]) from checkpoint, the shape in current "
                                     "model is torch.Size([16, 6]).")


def test_a_multi_seed_checkpoint_asks_for_one_seed(tmp_path):
    from agents.multi_seed import build_multi_seed
    from envs import make_env

    env = make_env("CartPole-v1", 1, backend="torch")
    config = agent_class("ppo").config_class(env="CartPole-v1", backend="torch", **SMALL)
    build_multi_seed(agent_class("ppo"), config, env.single_observation_space, env.single_action_space,
                     [1, 2]).save(tmp_path / "two.pt")
    with pytest.raises(ValueError, match="pass one seed's RUN_DIR/seed_S/agent.pt"):
        agent_class("dqn").from_env("CartPole-v1", encoder_checkpoint=str(tmp_path / "two.pt"))
