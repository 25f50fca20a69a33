"""Agents on reprl/GraphNav-v0 with the default settings: the gnn encoder, saved and loaded intact."""
import pytest
import torch

from agents import DQN, PPO
from agents.base import AGENT_FORMAT, Agent
from agents.checkpoint import load_checkpoint
from agents.runner import CHECKPOINT
from envs import make_env
from representation.gnn import GNNEncoder
from representation.gnn.padded import PaddedGraph

ENV_ID = "reprl/GraphNav-v0"


@pytest.mark.parametrize("agent_cls", [PPO, DQN])
def test_default_settings_build_the_gnn_encoder(agent_cls):
    agent = agent_cls.from_env(ENV_ID)
    assert agent.config.encoder == "gnn"
    assert agent.config.encoder_options == {}
    assert isinstance(agent.representation_encoder(), GNNEncoder)


@pytest.mark.parametrize("agent_cls", [PPO, DQN])
def test_explicit_encoder_options_reach_the_encoder(agent_cls):
    agent = agent_cls.from_env(ENV_ID, encoder_options={"hidden_dim": 16, "node_slot_dim": 0})
    encoder = agent.representation_encoder()
    assert agent.config.encoder_options == {"hidden_dim": 16, "node_slot_dim": 0}
    assert encoder.out_dim == 2 * 16  # the pooled states and the master node's, no slots


def test_trained_gnn_agent_is_saved_and_loaded_intact(tmp_path):
    agent = PPO.from_env(ENV_ID, encoder="gnn", num_envs=2, num_steps=16, eval_every=0, log_every=32,
                         encoder_options={"hidden_dim": 16, "num_layers": 1})
    agent.learn(64, run_dir=tmp_path / "run", progress=False)
    agent.save(tmp_path / "agent.pt")
    saved = Agent.load(tmp_path / "agent.pt")
    resumed = Agent.from_payload(load_checkpoint(tmp_path / "run" / CHECKPOINT, AGENT_FORMAT))

    env = make_env(ENV_ID, 4, seed=3)
    obs = env.reset(seed=3)
    env.close()
    expected = agent.act(obs, explore=False)
    for loaded in (saved, resumed):
        assert type(loaded.observation_space) is PaddedGraph
        assert loaded.observation_space == agent.observation_space
        assert isinstance(loaded.representation_encoder(), GNNEncoder)
        torch.testing.assert_close(loaded.act(obs, explore=False), expected, rtol=0, atol=0)
