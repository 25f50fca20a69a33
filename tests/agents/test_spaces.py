"""Saved agents' spaces: every space comes back from its dict as the space it was, PaddedGraph included."""
import io

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.spaces import space_from_dict, space_to_dict
from representation.encoders import make_encoder
from representation.gnn.padded import PaddedGraph


def round_trip(space: gym.Space) -> gym.Space:
    """Through the dict and a ``weights_only`` checkpoint file, as ``Agent.save``/``Agent.load`` do."""
    buffer = io.BytesIO()
    torch.save(space_to_dict(space), buffer)
    buffer.seek(0)
    return space_from_dict(torch.load(buffer, weights_only=True))


def test_padded_graph_round_trips_as_itself():
    space = PaddedGraph(max_nodes=7, node_features=3)
    loaded = round_trip(space)
    assert type(loaded) is PaddedGraph
    assert (loaded.max_nodes, loaded.node_features) == (7, 3)
    assert loaded == space
    assert (loaded.shape, loaded.dtype) == (space.shape, space.dtype)
    np.testing.assert_array_equal(loaded.low, space.low)
    np.testing.assert_array_equal(loaded.high, space.high)
    assert space.sample() in loaded


@pytest.mark.parametrize("space", [
    gym.spaces.Discrete(5, start=-2),
    gym.spaces.MultiDiscrete([3, 4]),
    gym.spaces.Box(np.array([-1, 0], np.float32), np.array([1, np.inf], np.float32)),
    gym.spaces.Box(0, 255, (4, 84, 84), dtype=np.uint8),
])
def test_other_spaces_round_trip_as_before(space):
    loaded = round_trip(space)
    assert type(loaded) is type(space)
    assert loaded == space


def test_unsaveable_space_is_named_in_one_line():
    space = gym.spaces.Dict({"a": gym.spaces.Box(np.zeros((3, 3), np.float32), np.arange(9, dtype=np.float32).reshape(3, 3))})
    with pytest.raises(ValueError, match="cannot save an agent for a Dict space") as error:
        space_to_dict(space)
    assert "\n" not in str(error.value)


def test_gnn_refusal_names_the_space_in_one_line():
    box = gym.spaces.Box(np.zeros((8, 11), np.float32), np.arange(88, dtype=np.float32).reshape(8, 11))
    with pytest.raises(ValueError, match=r"got a Box of shape \(8, 11\)") as error:
        make_encoder("gnn", box)
    assert "\n" not in str(error.value)
