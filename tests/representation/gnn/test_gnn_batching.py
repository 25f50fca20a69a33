"""Scatter reductions and graph batching against loop references."""
import numpy as np
import pytest
import torch
from gymnasium.spaces import GraphInstance

from representation.gnn import Graph, collate, scatter


def loop_scatter(src, index, dim_size, reduce):
    out = torch.zeros(dim_size, src.shape[1])
    for group in range(dim_size):
        rows = [src[i] for i in range(len(index)) if index[i] == group]
        if rows:
            stacked = torch.stack(rows)
            out[group] = {"sum": stacked.sum(0), "mean": stacked.mean(0), "max": stacked.max(0).values}[reduce]
    return out


@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_scatter_matches_loop_including_empty_groups(reduce):
    src = torch.tensor([[1.0, -2.0], [3.0, -5.0], [-4.0, 0.5], [2.0, 2.0], [-1.0, -1.0]])
    index = torch.tensor([0, 2, 0, 2, 2])  # group 1 and 3 receive nothing
    out = scatter(src, index, 4, reduce)
    torch.testing.assert_close(out, loop_scatter(src, index, 4, reduce), rtol=0, atol=0)
    assert out[1].tolist() == [0.0, 0.0] and out[3].tolist() == [0.0, 0.0]


def test_scatter_known_values():
    src = torch.tensor([[1.0], [3.0], [-4.0]])
    index = torch.tensor([1, 1, 0])
    assert scatter(src, index, 2, "sum").flatten().tolist() == [-4.0, 4.0]
    assert scatter(src, index, 2, "mean").flatten().tolist() == [-4.0, 2.0]
    assert scatter(src, index, 2, "max").flatten().tolist() == [-4.0, 3.0]
    with pytest.raises(ValueError, match="unknown reduction"):
        scatter(src, index, 2, "min")


def test_collate_shifts_edges_and_numbers_graphs():
    a = Graph(torch.tensor([[1.0], [2.0]]), torch.tensor([[0, 1], [1, 0]]), torch.tensor([[10.0], [11.0]]))
    b = Graph(torch.tensor([[3.0]]), torch.zeros(2, 0, dtype=torch.long), torch.zeros(0, 1))
    c = Graph(torch.tensor([[4.0], [5.0], [6.0]]), torch.tensor([[2], [0]]), torch.tensor([[12.0]]))
    batch = collate([a, b, c])
    assert batch.num_graphs == 3 and batch.num_nodes == 6 and batch.num_edges == 3
    assert batch.x.flatten().tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert batch.edge_index.tolist() == [[0, 1, 5], [1, 0, 3]]
    assert batch.edge_attr.flatten().tolist() == [10.0, 11.0, 12.0]
    assert batch.batch.tolist() == [0, 0, 1, 2, 2, 2]
    assert batch.edge_batch.tolist() == [0, 0, 2]
    assert batch.node_counts().tolist() == [2, 1, 3]


def test_collate_gymnasium_graph_instances():
    first = GraphInstance(nodes=np.array([[1.0, 0.0], [0.0, 1.0]]), edges=np.array([[0.5]]), edge_links=np.array([[0, 1]]))
    second = GraphInstance(nodes=np.array([[2.0, 2.0]]), edges=np.zeros((0, 1)), edge_links=np.zeros((0, 2), dtype=np.int64))
    batch = collate([first, second])
    assert batch.x.tolist() == [[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]]
    assert batch.edge_index.tolist() == [[0], [1]]
    assert batch.edge_attr.tolist() == [[0.5]]
    assert batch.batch.tolist() == [0, 0, 1]


def test_collate_rejects_bad_graphs():
    good = Graph(torch.ones(2, 1), torch.tensor([[0], [1]]))
    with pytest.raises(ValueError, match="outside its graph"):
        collate([good, Graph(torch.ones(2, 1), torch.tensor([[0], [2]]))])
    with pytest.raises(ValueError, match="same number of node features"):
        collate([good, Graph(torch.ones(2, 3), torch.tensor([[0], [1]]))])
    with pytest.raises(ValueError, match="empty"):
        collate([])
    with pytest.raises(ValueError, match="edge_index must be"):
        collate([Graph(torch.ones(2, 1), torch.tensor([0, 1]))])
