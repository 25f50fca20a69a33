"""Which bounds normalise which environment's returns."""
from __future__ import annotations

import numpy as np
import pytest

from agents.comparison.normalize import atari_game, normalizer_for


@pytest.mark.parametrize("env_id, game", [
    ("ALE/Pong-v5", "Pong"), ("PongNoFrameskip-v4", "Pong"),
    ("BreakoutDeterministic-v4", "Breakout"),
    ("ALE/SpaceInvaders-v5", "SpaceInvaders"), ("ms_pacman", "MsPacman"), ("seaquest", "Seaquest"),
    ("ALE/BeamRider-v5", "BeamRider"), ("Qbert-v4", "Qbert"), ("ALE/Enduro-v5", "Enduro"),
    ("CartPole-v1", None), ("MyGrid-v0", None)])
def test_atari_game_parses_env_ids(env_id, game):
    assert atari_game(env_id) == game


def test_atari_scores_are_human_normalised():
    pong = normalizer_for("ALE/Pong-v5", np.array([]))
    assert pong.method == "atari_human"
    np.testing.assert_allclose(pong(np.array([-20.7, 14.6, -3.05])), [0.0, 1.0, 0.5])
    breakout = normalizer_for("BreakoutNoFrameskip-v4", np.array([]))
    assert breakout(np.array([30.5])) == pytest.approx([1.0])


def test_known_bounds_then_observed_then_given():
    cartpole = normalizer_for("CartPole-v1", np.array([3.0, 4.0]))
    assert (cartpole.method, cartpole.low, cartpole.high) == ("known_bounds", 0.0, 500.0)
    assert normalizer_for("Acrobot-v1", np.array([])).low == -500.0
    observed = normalizer_for("MyGrid-v0", np.array([2.0, 6.0, 4.0]))
    assert (observed.method, observed.low, observed.high) == ("observed", 2.0, 6.0)
    np.testing.assert_allclose(observed(np.array([2.0, 4.0, 6.0])), [0.0, 0.5, 1.0])
    given = normalizer_for("CartPole-v1", np.array([]), bounds={"CartPole-v1": (0.0, 200.0)})
    assert (given.method, float(given(np.array([100.0]))[0])) == ("given_bounds", 0.5)


def test_degenerate_and_bad_bounds():
    same = normalizer_for("MyGrid-v0", np.array([3.0, 3.0]))
    assert same(np.array([3.0, 3.0])).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="high > low"):
        normalizer_for("MyGrid-v0", np.array([1.0]), bounds={"MyGrid-v0": (1.0, 1.0)})
    with pytest.raises(ValueError, match="no returns"):
        normalizer_for("MyGrid-v0", np.array([]))
