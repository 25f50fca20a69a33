"""Settings given through the Python API are checked against their types, as the CLI's flags are."""
import numpy as np
import pytest

from agents import DQN, PPO


@pytest.mark.parametrize("settings, message", [
    ({"norm_adv": "no"}, "norm_adv must be a bool, got 'no'"),
    ({"num_steps": 2.5}, "num_steps must be an int, got 2.5"),
    ({"steps": "abc"}, "steps must be an int, got 'abc'"),
    ({"learning_rate": "1e-3"}, "learning_rate must be a float, got '1e-3'"),
    ({"num_envs": True}, "num_envs must be an int, got True"),
    ({"encoder_options": [64, 64]}, "encoder_options must be a dict, got [64, 64]"),
])
def test_a_setting_of_the_wrong_type_is_refused_by_name(settings, message):
    with pytest.raises(ValueError) as error:
        PPO.from_env("CartPole-v1", **settings)
    assert str(error.value) == message


def test_numbers_of_any_numeric_type_are_taken():
    agent = DQN.from_env("CartPole-v1", batch_size=np.int64(16), gamma=np.float32(0.5), learning_rate=1)
    assert (agent.config.batch_size, agent.config.gamma, agent.config.learning_rate) == (16, 0.5, 1)
