"""The body every graph network shares: rounds of message passing, optionally with a master node."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from representation.gnn.graph_batch import GraphBatch
from representation.gnn.layers import GCNConv, MasterNode, MessagePassing

LAYERS = ("mpnn", "gcn")


class GNNBody(nn.Module):
    """``num_layers`` rounds of message passing (each followed by a ReLU and, optionally, a
    master-node exchange). Returns node states ``[num_nodes, hidden]`` and the global state
    ``[num_graphs, hidden]`` (``None`` without a master node)."""

    def __init__(self, node_dim: int, hidden_dim: int = 64, num_layers: int = 2, layer: str = "mpnn",
                 aggregation: str = "sum", edge_dim: int = 0, master_node: bool = False):
        super().__init__()
        if layer not in LAYERS:
            raise ValueError(f"unknown graph layer '{layer}' (choose from {', '.join(LAYERS)})")
        if layer == "gcn" and edge_dim:
            raise ValueError("GCN layers do not use edge features: use layer='mpnn' with edge_dim > 0")
        if num_layers < 1 or hidden_dim < 1:
            raise ValueError("a graph network needs num_layers >= 1 and hidden_dim >= 1")
        self.hidden_dim = hidden_dim
        widths = [node_dim] + [hidden_dim] * num_layers
        if layer == "gcn":
            self.convs = nn.ModuleList(GCNConv(i, o) for i, o in zip(widths[:-1], widths[1:]))
        else:
            self.convs = nn.ModuleList(MessagePassing(i, o, edge_dim, aggregation) for i, o in zip(widths[:-1], widths[1:]))
        self.masters = nn.ModuleList(MasterNode(hidden_dim) for _ in range(num_layers)) if master_node else None

    def forward(self, graphs: GraphBatch) -> tuple[Tensor, Tensor | None]:
        h = graphs.x
        u = h.new_zeros(graphs.num_graphs, self.hidden_dim) if self.masters is not None else None
        for k, conv in enumerate(self.convs):
            h = torch.relu(conv(h, graphs.edge_index, graphs.edge_attr))
            if self.masters is not None:
                h, u = self.masters[k](h, u, graphs.batch)
        return h, u
