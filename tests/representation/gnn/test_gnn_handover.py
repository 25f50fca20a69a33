"""A graph network trained on its own hands its body to agents as the "gnn" encoder."""
import json

import numpy as np
import pytest
import torch

from agents import DQN
from representation.encoders import load_encoder_weights, make_encoder, read_encoder_file
from representation.gnn import GNN, Graph, PaddedGraph, fit, padded_to_graph_batch

torch.set_num_threads(1)


def padded_observations(space: PaddedGraph, sizes: tuple[int, ...], seed: int) -> torch.Tensor:
    """Random undirected graphs of the given sizes, packed into ``space``."""
    rng = np.random.default_rng(seed)
    observations = []
    for n in sizes:
        upper = np.triu(rng.random((n, n)) < 0.5, 1).astype(np.float32)
        observations.append(space.pack(rng.standard_normal((n, space.node_features)), upper + upper.T))
    return torch.as_tensor(np.stack(observations))


def graphs_of(obs: torch.Tensor, node_features: int) -> list[Graph]:
    """Each padded observation as a ``Graph`` of its real nodes."""
    batches = [padded_to_graph_batch(row[None], node_features)[0] for row in obs]
    return [Graph(batch.x, batch.edge_index) for batch in batches]


def rebuilt_encoder(model: GNN, path, space: PaddedGraph, **choices):
    model.export_encoder(path, **choices)
    payload = read_encoder_file(path)
    encoder = make_encoder(payload["name"], space, **payload["options"])
    load_encoder_weights(encoder, payload, path)
    return encoder, payload


@pytest.mark.parametrize("options", [dict(master_node=True), dict(layer="gcn", readout="mean"),
                                     dict(aggregation="max", num_layers=3, hidden_dim=16)])
def test_the_encoder_computes_what_a_graph_level_head_reads(options, tmp_path):
    """For graphs of any size up to the agent's ``max_nodes``: head(encoder(padded obs)) is the
    model's own output on the same graphs, exactly."""
    torch.manual_seed(0)
    model = GNN(3, 4, **options)
    space = PaddedGraph(max_nodes=7, node_features=3)
    graphs = padded_observations(space, (3, 7, 1, 5), seed=1)
    targets = torch.tensor([0, 3, 1, 2])
    fit(model, graphs_of(graphs, 3), targets, epochs=3, batch_size=2)
    encoder, payload = rebuilt_encoder(model, tmp_path / "gnn.pt", space)
    assert payload["name"] == "gnn" and payload["options"]["node_slot_dim"] == 0
    obs = padded_observations(space, (2, 7, 4), seed=2)
    with torch.no_grad():
        assert torch.equal(model.head(encoder(obs)), model(padded_to_graph_batch(obs, 3)[0]))


def test_node_slots_come_after_the_pooled_features_and_edge_features_refuse(tmp_path):
    torch.manual_seed(0)
    model = GNN(2, 3, master_node=True, hidden_dim=8)
    space = PaddedGraph(max_nodes=4, node_features=2)
    pooled, _ = rebuilt_encoder(model, tmp_path / "pooled.pt", space)
    slotted, payload = rebuilt_encoder(model, tmp_path / "slots.pt", space, node_slot_dim=5)
    obs = padded_observations(space, (4, 2), seed=0)
    with torch.no_grad():
        features = slotted(obs)
        assert features.shape == (2, 2 * 8 + 4 * 5)
        assert torch.equal(features[:, :16], pooled(obs))
        assert torch.equal(features[1, 16 + 2 * 5:], torch.zeros(2 * 5))  # the second graph's padded rows
    assert payload["options"]["node_slot_dim"] == 5
    with pytest.raises(ValueError, match="reads edge features .edge_dim 2., which padded-graph observations"):
        GNN(2, 3, edge_dim=2).export_encoder(tmp_path / "edges.pt")


def test_an_agent_on_graph_observations_starts_from_the_exported_body(tmp_path):
    torch.manual_seed(0)
    model = GNN(2, 8, master_node=True, num_layers=3)  # GraphNav-v0: 8 nodes of 2 features
    model.export_encoder(tmp_path / "gnn.pt", node_slot_dim=8)
    agent = DQN.from_env("reprl/GraphNav-v0", encoder_checkpoint=str(tmp_path / "gnn.pt"), steps=200,
                         learning_starts=100, eval_every=0, checkpoint_every=0, eval_episodes=1)
    body = agent.q.encoder.body.state_dict()
    assert body.keys() == model.body.state_dict().keys()
    assert all(torch.equal(body[name], model.body.state_dict()[name]) for name in body)
    agent.learn(run_dir=tmp_path / "run", progress=False)  # and trains from there
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 200
