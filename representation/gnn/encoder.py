"""The ``"gnn"`` encoder: agents with padded-graph observations (``PaddedGraph``) use it like
any other encoder (``make_encoder("gnn", space)``, ``--encoder gnn``)."""
from __future__ import annotations

import torch
from gymnasium import spaces
from torch import Tensor

from representation.encoders.base import Encoder
from representation.linear import Linear
from representation.encoders.registry import register_encoder
from representation.gnn.layers import check_reduction, global_pool
from representation.gnn.body import GNNBody
from representation.gnn.padded import PaddedGraph, padded_to_graph_batch


@register_encoder("gnn")
class GNNEncoder(Encoder):
    """Message passing over each observed graph, then a readout to one feature vector.

    Features are ``[readout(h), u, slots]``: the pooled node states, the master node's global
    state (when ``master_node``) and, when ``node_slot_dim > 0``, every node's state projected
    to ``node_slot_dim`` and laid out in its padded row (zeros for padding). The pooled part is
    invariant to node order; the slots keep which row is which, which a head needs when
    actions name nodes by their row (as in ``reprl/GraphNav-v0``).
    """

    def __init__(self, observation_space: spaces.Space, hidden_dim: int = 64, num_layers: int = 3,
                 layer: str = "mpnn", aggregation: str = "sum", master_node: bool = True,
                 readout: str = "sum", node_slot_dim: int = 8):
        super().__init__()
        if not isinstance(observation_space, PaddedGraph):
            raise ValueError(f"the gnn encoder needs a PaddedGraph observation space (graphs padded to a fixed-shape "
                             f"tensor, see representation.gnn.padded), got a {type(observation_space).__name__} "
                             f"of shape {observation_space.shape}")
        check_reduction("readout", readout)
        if node_slot_dim < 0:
            raise ValueError(f"node_slot_dim must be >= 0, got {node_slot_dim}")
        self.node_features = observation_space.node_features
        self.max_nodes = observation_space.max_nodes
        self.readout = readout
        self.node_slot_dim = node_slot_dim
        self.body = GNNBody(self.node_features, hidden_dim, num_layers, layer, aggregation, 0, master_node)
        self.slot_projection = Linear(hidden_dim, node_slot_dim) if node_slot_dim else None
        self.out_dim = hidden_dim * (2 if master_node else 1) + self.max_nodes * node_slot_dim

    def forward(self, obs: Tensor) -> Tensor:
        graphs, slots = padded_to_graph_batch(obs, self.node_features)
        h, u = self.body(graphs)
        parts = [global_pool(h, graphs.batch, graphs.num_graphs, self.readout)]
        if u is not None:
            parts.append(u)
        if self.slot_projection is not None:
            projected = self.slot_projection(h)
            padded = projected.new_zeros(graphs.num_graphs * self.max_nodes, self.node_slot_dim)
            parts.append(padded.index_copy(0, slots, projected).reshape(graphs.num_graphs, -1))
        return torch.cat(parts, dim=1)
