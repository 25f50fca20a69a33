"""Graph networks: a stack of graph layers (the body) with a node-, edge- or graph-level head.

``GNN(node_dim, out_dim, level=...)(graph_batch)`` returns ``[num_nodes, out]``,
``[num_edges, out]`` or ``[num_graphs, out]``; ``GCN`` is the same network with Kipf & Welling
layers. Models are saved as their constructor config plus weights and loaded with
``torch.load(weights_only=True)``, so a model file never runs code.
"""
from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor, nn

from representation.encoders.io import EncoderHandOver
from representation.linear import Linear
from representation.files import load_tagged, save_atomic
from representation.gnn.body import GNNBody
from representation.gnn.graph_batch import GraphBatch
from representation.gnn.layers import check_reduction, global_pool

LEVELS = ("node", "edge", "graph")
FORMAT = "reprl-gnn-v1"


def _mlp(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(Linear(in_dim, hidden_dim), nn.ReLU(), Linear(hidden_dim, out_dim))


class GNN(EncoderHandOver, nn.Module):
    """Body plus one head.

    level "node":  ``MLP(h_v)``                               -> ``[num_nodes, out_dim]``
    level "edge":  ``MLP([h_source, h_target, e])``           -> ``[num_edges, out_dim]``
    level "graph": ``MLP([readout(h), u])`` (u: master node)  -> ``[num_graphs, out_dim]``

    Its body hands over to agents on padded-graph observations as the ``gnn`` encoder
    (``export_encoder``), for a model without edge features (padded graphs carry none).
    """

    def __init__(self, node_dim: int, out_dim: int, *, level: str = "graph", hidden_dim: int = 64,
                 num_layers: int = 2, layer: str = "mpnn", aggregation: str = "sum", edge_dim: int = 0,
                 master_node: bool = False, readout: str = "sum"):
        super().__init__()
        if level not in LEVELS:
            raise ValueError(f"unknown prediction level '{level}' (choose from {', '.join(LEVELS)})")
        check_reduction("readout", readout)
        self.config: dict[str, Any] = dict(
            node_dim=node_dim, out_dim=out_dim, level=level, hidden_dim=hidden_dim, num_layers=num_layers,
            layer=layer, aggregation=aggregation, edge_dim=edge_dim, master_node=master_node, readout=readout)
        self.body = GNNBody(node_dim, hidden_dim, num_layers, layer, aggregation, edge_dim, master_node)
        head_in = {"node": hidden_dim, "edge": 2 * hidden_dim + edge_dim,
                   "graph": hidden_dim * (2 if master_node else 1)}[level]
        self.head = _mlp(head_in, hidden_dim, out_dim)

    def forward(self, graphs: GraphBatch) -> Tensor:
        h, u = self.body(graphs)
        level = self.config["level"]
        if level == "node":
            return self.head(h)
        if level == "edge":
            parts = [h[graphs.edge_index[0]], h[graphs.edge_index[1]]]
            if self.config["edge_dim"]:
                parts.append(graphs.edge_attr)
            return self.head(torch.cat(parts, dim=1))
        pooled = global_pool(h, graphs.batch, graphs.num_graphs, self.config["readout"])
        return self.head(pooled if u is None else torch.cat([pooled, u], dim=1))

    def encoder_for_agents(self, node_slot_dim: int = 0) -> tuple[nn.Module, str, dict[str, Any]]:
        """The body as a ``gnn`` encoder: features ``[readout(h), u]``, what a graph-level head
        reads. ``node_slot_dim > 0`` adds the encoder's per-node slots (which agents whose
        actions name nodes need) through a projection at its initial weights, for the agent to
        train: keep such an encoder unfrozen."""
        from representation.gnn.encoder import GNNEncoder  # it imports this module
        from representation.gnn.padded import PaddedGraph

        config = self.config
        if config["edge_dim"]:
            raise ValueError(f"this GNN reads edge features (edge_dim {config['edge_dim']}), which padded-graph "
                             f"observations do not carry: it has no agent encoder")
        options = {name: config[name] for name in ("hidden_dim", "num_layers", "layer", "aggregation",
                                                   "master_node", "readout")}
        options["node_slot_dim"] = int(node_slot_dim)
        # The agent rebuilds the encoder for its own graphs' size: no weight depends on max_nodes.
        encoder = GNNEncoder(PaddedGraph(1, config["node_dim"]), **options).to(next(self.parameters()).device)
        encoder.body.load_state_dict(self.body.state_dict())
        return encoder, "gnn", options

    def save(self, path: str | os.PathLike) -> None:
        """Writes config and weights atomically (temp file, then rename)."""
        save_atomic({"format": FORMAT, "config": self.config,
                     "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()}}, path)


class GCN(GNN):
    """A ``GNN`` whose layers are Kipf & Welling graph convolutions."""

    def __init__(self, node_dim: int, out_dim: int, **options: Any):
        if options.setdefault("layer", "gcn") != "gcn":
            raise ValueError("GCN always uses layer='gcn'; use GNN for other layers")
        super().__init__(node_dim, out_dim, **options)


def load_gnn(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> GNN:
    """Rebuilds a model written by ``GNN.save``; raises ValueError for a missing or foreign file."""
    payload = load_tagged(path, FORMAT, "graph network file", map_location)
    model = GNN(**payload["config"])
    model.load_state_dict(payload["state_dict"])
    return model
