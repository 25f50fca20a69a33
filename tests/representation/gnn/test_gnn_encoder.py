"""Padded-graph observations and the "gnn" agent encoder."""
import gymnasium as gym
import numpy as np
import pytest
import torch

from representation.encoders import default_encoder_name, make_encoder
from representation.gnn import GNNEncoder, Graph, PaddedGraph, collate, global_pool, padded_to_graph_batch

torch.set_num_threads(1)

SPACE = PaddedGraph(max_nodes=5, node_features=2)
PATH_ADJACENCY = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=np.float32)


def random_observations(count: int, seed: int) -> torch.Tensor:
    space = PaddedGraph(5, 2, seed=seed)
    return torch.as_tensor(np.stack([space.sample() for _ in range(count)]))


def test_pack_lays_out_mask_features_and_adjacency():
    obs = SPACE.pack(np.array([[1.0, 2.0], [3.0, 4.0], [0.0, 0.0]]), PATH_ADJACENCY)
    assert obs.shape == (5, 8) and obs.dtype == np.float32
    assert obs.tolist() == [[1, 1, 2, 0, 1, 0, 0, 0],
                            [1, 3, 4, 1, 0, 1, 0, 0],
                            [1, 0, 0, 0, 1, 0, 0, 0],  # a real node with all-zero features
                            [0] * 8, [0] * 8]
    assert SPACE.contains(obs)
    with pytest.raises(ValueError, match="n <= 5"):
        SPACE.pack(np.zeros((6, 2)), np.zeros((6, 6)))


def test_contains_rejects_malformed_graphs():
    obs = SPACE.pack(np.ones((3, 2)), PATH_ADJACENCY)
    edge_to_padding = obs.copy()
    edge_to_padding[0, 3 + 4] = 1.0
    fractional_mask = obs.copy()
    fractional_mask[1, 0] = 0.5
    padded_features = obs.copy()
    padded_features[4, 1] = 2.0
    for bad in (edge_to_padding, fractional_mask, padded_features, obs[:4]):
        assert not SPACE.contains(bad)
    assert all(SPACE.contains(SPACE.sample()) for _ in range(20))


def test_padded_batch_equals_collated_graphs():
    obs = torch.stack([torch.as_tensor(SPACE.pack(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), PATH_ADJACENCY)),
                       torch.zeros(5, 8),  # a graph without nodes
                       torch.as_tensor(SPACE.pack(np.array([[7.0, 8.0]]), np.zeros((1, 1))))])
    obs[0] = obs[0, [2, 0, 4, 1, 3]][:, [0, 1, 2, 5, 3, 7, 4, 6]]  # real nodes need not come first
    graphs, slots = padded_to_graph_batch(obs, 2)
    assert graphs.num_graphs == 3
    assert graphs.x.tolist() == [[5.0, 6.0], [1.0, 2.0], [3.0, 4.0], [7.0, 8.0]]
    assert graphs.batch.tolist() == [0, 0, 0, 2]
    assert slots.tolist() == [0, 1, 3, 10]
    edges = sorted(map(tuple, graphs.edge_index.T.tolist()))
    assert edges == [(0, 2), (1, 2), (2, 0), (2, 1)]  # path 1 - 2 - 0 in compact ids
    with pytest.raises(ValueError, match="must be"):
        padded_to_graph_batch(obs[:, :, :7], 2)


def test_encoder_on_a_padded_batch_equals_graph_by_graph():
    obs = random_observations(6, seed=0)
    torch.manual_seed(0)
    encoder = GNNEncoder(SPACE, hidden_dim=16, num_layers=2, master_node=True, node_slot_dim=3)
    assert encoder.out_dim == 16 * 2 + 5 * 3
    together = encoder(obs)
    torch.testing.assert_close(together, torch.cat([encoder(obs[i:i + 1]) for i in range(6)]))
    # The pooled part is the body run on ordinarily collated graphs.
    graphs = []
    for single in obs.numpy():
        real = single[:, 0] == 1
        adjacency = torch.as_tensor(single[real][:, 3:][:, real])
        graphs.append(Graph(torch.as_tensor(single[real, 1:3]), adjacency.nonzero().T.contiguous()))
    batch = collate(graphs)
    h, u = encoder.body(batch)
    torch.testing.assert_close(together[:, :16], global_pool(h, batch.batch, 6, "sum"))
    torch.testing.assert_close(together[:, 16:32], u)


def test_encoder_pooled_part_is_invariant_and_slots_follow_the_nodes():
    obs = random_observations(4, seed=1)
    perm = torch.tensor([3, 0, 4, 2, 1])
    permuted = obs[:, perm]
    permuted[:, :, 3:] = permuted[:, :, 3:][:, :, perm]
    torch.manual_seed(0)
    encoder = GNNEncoder(SPACE, hidden_dim=16, num_layers=2, node_slot_dim=3)
    original, relabelled = encoder(obs), encoder(permuted)
    torch.testing.assert_close(relabelled[:, :32], original[:, :32])
    slots = original[:, 32:].reshape(4, 5, 3)
    torch.testing.assert_close(relabelled[:, 32:].reshape(4, 5, 3), slots[:, perm])
    padding = obs[:, :, 0] == 0
    assert (slots[padding] == 0).all()


def test_registered_as_gnn_and_default_for_padded_graphs():
    assert default_encoder_name(SPACE) == "gnn"
    assert default_encoder_name(gym.spaces.Box(-1, 1, (5, 8))) == "mlp"
    encoder = make_encoder("auto", SPACE, hidden_dim=8, num_layers=1, master_node=False, node_slot_dim=0)
    assert isinstance(encoder, GNNEncoder) and encoder.out_dim == 8
    assert encoder(random_observations(3, seed=2)).shape == (3, 8)
    with pytest.raises(ValueError, match="PaddedGraph"):
        make_encoder("gnn", gym.spaces.Box(-1, 1, (5, 8)))
    with pytest.raises(ValueError, match="bad options"):
        make_encoder("gnn", SPACE, width=3)
