"""Message passing, GCN and master node against dense formulas and loop references;
permutation equivariance / invariance and batching of whole models."""
import math

import pytest
import torch

from representation.gnn import GCN, GNN, GCNConv, Graph, MasterNode, MessagePassing, collate

torch.set_num_threads(1)


def random_graph(n: int, generator: torch.Generator, node_dim: int = 3, edge_dim: int = 0) -> Graph:
    upper = torch.triu(torch.rand(n, n, generator=generator) < 0.5, diagonal=1)
    edge_index = (upper | upper.T).nonzero().T.contiguous()
    edge_attr = torch.randn(edge_index.shape[1], edge_dim, generator=generator) if edge_dim else None
    return Graph(torch.randn(n, node_dim, generator=generator), edge_index, edge_attr)


def permuted(graph: Graph, perm: torch.Tensor) -> Graph:
    """Node ``i`` of the result is node ``perm[i]`` of ``graph``; edges keep their order."""
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(len(perm))
    return Graph(graph.x[perm], inverse[graph.edge_index], graph.edge_attr)


def test_gcn_layer_matches_dense_formula():
    generator = torch.Generator().manual_seed(0)
    layer = GCNConv(3, 4)
    torch.nn.init.normal_(layer.bias, generator=generator)
    x = torch.randn(5, 3, generator=generator)
    # A directed edge set, so in-degree (row sums of A) and out-degree differ, plus a self-loop
    # that the layer must replace by the one of A + I.
    edge_index = torch.tensor([[0, 1, 2, 3, 3, 4, 2], [1, 2, 1, 1, 0, 3, 2]])
    dense = torch.zeros(5, 5)
    dense[edge_index[1], edge_index[0]] = 1.0  # A[v, w] = 1 for an edge w -> v
    dense.fill_diagonal_(0.0)
    a_hat = dense + torch.eye(5)
    d_inv_sqrt = torch.diag(a_hat.sum(1).pow(-0.5))
    expected = d_inv_sqrt @ a_hat @ d_inv_sqrt @ x @ layer.linear.weight.T + layer.bias
    torch.testing.assert_close(layer(x, edge_index), expected)


def test_gcn_layer_hand_computed_path():
    layer = GCNConv(1, 1, bias=False)
    torch.nn.init.ones_(layer.linear.weight)
    x = torch.tensor([[1.0], [2.0], [4.0]])  # path 0 - 1 - 2: degrees of A + I are 2, 3, 2
    out = layer(x, torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])).flatten()
    expected = [1 / 2 + 2 / math.sqrt(6), 1 / math.sqrt(6) + 2 / 3 + 4 / math.sqrt(6), 2 / math.sqrt(6) + 4 / 2]
    torch.testing.assert_close(out, torch.tensor(expected))


@pytest.mark.parametrize("aggregation", ["sum", "mean", "max"])
def test_message_passing_matches_loop(aggregation):
    generator = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    layer = MessagePassing(3, 4, edge_dim=2, aggregation=aggregation)
    x = torch.randn(4, 3, generator=generator)
    edge_index = torch.tensor([[0, 2, 3, 1, 0], [1, 1, 1, 2, 2]])  # node 0 and 3 receive nothing
    edge_attr = torch.randn(5, 2, generator=generator)
    expected = []
    for v in range(4):
        messages = [layer.message_net(torch.cat([x[v], x[w], edge_attr[k]]))
                    for k, (w, target) in enumerate(edge_index.T.tolist()) if target == v]
        if messages:
            stacked = torch.stack(messages)
            aggregated = {"sum": stacked.sum(0), "mean": stacked.mean(0), "max": stacked.max(0).values}[aggregation]
        else:
            aggregated = torch.zeros(4)
        expected.append(layer.update_net(torch.cat([x[v], aggregated])))
    torch.testing.assert_close(layer(x, edge_index, edge_attr), torch.stack(expected))


def test_message_passing_requires_its_edge_features():
    layer = MessagePassing(3, 4, edge_dim=2)
    with pytest.raises(ValueError, match="edge_attr with 2 features"):
        layer(torch.ones(2, 3), torch.tensor([[0], [1]]))


def test_master_node_reads_and_writes_every_node():
    master = MasterNode(2)
    h = torch.tensor([[1.0, 0.0], [2.0, 1.0], [0.0, 3.0]])
    u = torch.tensor([[0.5, 0.5], [1.0, -1.0]])
    batch = torch.tensor([0, 0, 1])
    h_new, u_new = master(h, u, batch)
    pooled = torch.stack([h[0] + h[1], h[2]])
    expected_u = master.update_net(torch.cat([u, pooled], dim=1))
    torch.testing.assert_close(u_new, expected_u)
    torch.testing.assert_close(h_new, h + master.broadcast(expected_u)[batch])


MODELS = [dict(layer="mpnn", aggregation="sum"), dict(layer="mpnn", aggregation="mean"),
          dict(layer="mpnn", aggregation="max", master_node=True), dict(layer="gcn", master_node=True)]


@pytest.mark.parametrize("options", MODELS)
def test_node_outputs_are_permutation_equivariant_and_graph_outputs_invariant(options):
    generator = torch.Generator().manual_seed(2)
    edge_dim = 2 if options["layer"] == "mpnn" else 0
    graph = random_graph(7, generator, edge_dim=edge_dim)
    perm = torch.randperm(7, generator=generator)
    torch.manual_seed(0)
    node_model = GNN(3, 5, level="node", edge_dim=edge_dim, hidden_dim=16, **options)
    graph_model = GNN(3, 5, level="graph", edge_dim=edge_dim, hidden_dim=16, **options)
    edge_model = GNN(3, 5, level="edge", edge_dim=edge_dim, hidden_dim=16, **options)
    original, relabelled = collate([graph]), collate([permuted(graph, perm)])
    torch.testing.assert_close(node_model(relabelled), node_model(original)[perm])
    torch.testing.assert_close(graph_model(relabelled), graph_model(original))
    torch.testing.assert_close(edge_model(relabelled), edge_model(original))  # same edge order


@pytest.mark.parametrize("level", ["node", "edge", "graph"])
def test_batched_graphs_give_the_same_outputs_as_alone(level):
    generator = torch.Generator().manual_seed(3)
    graphs = [random_graph(n, generator, edge_dim=2) for n in (4, 1, 6, 3)]
    torch.manual_seed(0)
    model = GNN(3, 2, level=level, edge_dim=2, hidden_dim=8, master_node=True)
    together = model(collate(graphs))
    alone = torch.cat([model(collate([g])) for g in graphs])
    torch.testing.assert_close(together, alone)


def test_gcn_model_is_a_gnn_with_gcn_layers():
    model = GCN(3, 2, hidden_dim=8, num_layers=2)
    assert model.config["layer"] == "gcn"
    assert all(isinstance(conv, GCNConv) for conv in model.body.convs)
    assert model(collate([random_graph(4, torch.Generator().manual_seed(0))])).shape == (1, 2)
    with pytest.raises(ValueError, match="GCN always uses"):
        GCN(3, 2, layer="mpnn")
    with pytest.raises(ValueError, match="edge features"):
        GNN(3, 2, layer="gcn", edge_dim=2)
