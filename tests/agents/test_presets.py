"""A preset's encoder_options go to the encoder they were written for, explicit ones always apply."""
import pytest

from agents import PPO
from agents.presets import resolve_config

CLASSIC_OPTIONS = {"hidden_sizes": [64, 64], "activation": "tanh"}  # PPO's "classic" preset, for the mlp


@pytest.mark.parametrize("settings, options", [
    ({"env": "CartPole-v1"}, CLASSIC_OPTIONS),                      # auto -> mlp, the preset's encoder
    ({"env": "CartPole-v1", "encoder": "mlp"}, CLASSIC_OPTIONS),
    ({"env": "CartPole-v1", "encoder": "gnn"}, {}),
    ({"env": "reprl/GraphNav-v0"}, {}),                             # auto -> gnn
    ({"env": "reprl/GraphNav-v0", "encoder": "mlp"}, CLASSIC_OPTIONS),
    ({"env": "reprl/GraphNav-v0", "encoder_options": {"hidden_dim": 8}}, {"hidden_dim": 8}),
    ({"env": "CartPole-v1", "encoder": "gnn", "encoder_options": {"hidden_dim": 8}}, {"hidden_dim": 8}),
])
def test_preset_encoder_options_only_for_their_encoder(settings, options):
    assert resolve_config(PPO, settings).encoder_options == options
