"""Model files, option checking, and a graph task that needs message passing."""
import pytest
import torch
from torch import nn

from representation.gnn import GNN, Graph, accuracy, collate, fit, global_pool, load_gnn

torch.set_num_threads(1)


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = GNN(3, 2, level="node", hidden_dim=8, num_layers=2, aggregation="max", edge_dim=1, master_node=True)
    graph = collate([Graph(torch.randn(4, 3), torch.tensor([[0, 1, 2], [1, 2, 3]]), torch.randn(3, 1))])
    model.save(tmp_path / "model.pt")
    loaded = load_gnn(tmp_path / "model.pt")
    assert loaded.config == model.config
    torch.testing.assert_close(loaded(graph), model(graph), rtol=0, atol=0)


def test_load_rejects_missing_and_foreign_files(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_gnn(tmp_path / "missing.pt")
    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a reprl graph network file"):
        load_gnn(tmp_path / "other.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="corrupt"):
        load_gnn(tmp_path / "garbage.pt")


@pytest.mark.parametrize("options, message", [(dict(level="pixel"), "prediction level"),
                                              (dict(layer="gat"), "graph layer"),
                                              (dict(aggregation="min"), "aggregation"),
                                              (dict(readout="median"), "readout"),
                                              (dict(num_layers=0), "num_layers")])
def test_bad_options_raise_value_error(options, message):
    with pytest.raises(ValueError, match=message):
        GNN(3, 2, **options)


def triangle_dataset(num_graphs: int, generator: torch.Generator, nodes: int = 6, edges: int = 6):
    """Graphs with exactly ``nodes`` nodes and ``edges`` edges and constant node features,
    half of them with a triangle. Node and edge counts carry no signal, so only the structure
    seen through message passing separates the classes."""
    pairs = torch.triu_indices(nodes, nodes, offset=1)
    graphs, labels, wanted = [], [], [num_graphs // 2, num_graphs - num_graphs // 2]
    while sum(wanted):
        chosen = pairs[:, torch.randperm(pairs.shape[1], generator=generator)[:edges]]
        adjacency = torch.zeros(nodes, nodes)
        adjacency[chosen[0], chosen[1]] = 1.0
        adjacency = adjacency + adjacency.T
        has_triangle = int(torch.linalg.matrix_power(adjacency, 3).diagonal().gt(0).any())
        if wanted[has_triangle]:
            wanted[has_triangle] -= 1
            graphs.append(Graph(torch.ones(nodes, 1), adjacency.nonzero().T.contiguous()))
            labels.append(has_triangle)
    return graphs, torch.tensor(labels)


class SumPooledMLP(nn.Module):
    """The baseline without message passing: an MLP on the sum of node features."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, 32), nn.ReLU(), nn.Linear(32, 2))

    def forward(self, graphs):
        return self.net(global_pool(graphs.x, graphs.batch, graphs.num_graphs, "sum"))


def test_gnn_detects_triangles_where_a_pooled_mlp_cannot():
    generator = torch.Generator().manual_seed(0)
    train, test = triangle_dataset(400, generator), triangle_dataset(300, generator)
    torch.manual_seed(0)
    gnn = GNN(1, 2, hidden_dim=32, num_layers=3)
    losses = fit(gnn, *train, epochs=30, batch_size=100, lr=1e-2, seed=0)
    mlp = SumPooledMLP()
    fit(mlp, *train, epochs=30, batch_size=100, lr=1e-2, seed=0)
    assert losses[-1] < losses[0]
    assert accuracy(gnn, *test) >= 0.85
    assert accuracy(mlp, *test) == 0.5  # every graph looks the same to it
