"""Graphs as fixed-shape tensors, so replay and rollout buffers can store graph observations.

An observation of ``PaddedGraph(max_nodes, node_features)`` is a float32 array
``[max_nodes, 1 + node_features + max_nodes]``; row ``v`` is

    [mask_v, x_v (node_features values), A[v, 0..max_nodes-1]]

``mask_v = 1`` marks a real node. ``A[v, w] = 1`` is an edge ``v -> w`` (undirected graphs are
symmetric). Padded rows are all zero. The mask is its own column rather than one of the node
features so that a real node whose features are all zero is still a node.
"""
from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from representation.gnn.graph_batch import GraphBatch


class PaddedGraph(spaces.Box):
    """Box of padded graphs with up to ``max_nodes`` nodes and ``node_features`` features."""

    def __init__(self, max_nodes: int, node_features: int, seed: int | np.random.Generator | None = None):
        if max_nodes < 1 or node_features < 0:
            raise ValueError(f"a padded graph needs max_nodes >= 1 and node_features >= 0, got {max_nodes}, {node_features}")
        self.max_nodes = int(max_nodes)
        self.node_features = int(node_features)
        width = 1 + self.node_features + self.max_nodes
        low = np.zeros((self.max_nodes, width), dtype=np.float32)
        high = np.ones((self.max_nodes, width), dtype=np.float32)
        low[:, 1:1 + self.node_features] = -np.inf
        high[:, 1:1 + self.node_features] = np.inf
        super().__init__(low=low, high=high, dtype=np.float32, seed=seed)

    def pack(self, x: np.ndarray, adjacency: np.ndarray) -> np.ndarray:
        """Encodes one graph: ``x [n, node_features]``, ``adjacency [n, n]`` (0/1)."""
        x = np.asarray(x, dtype=np.float32).reshape(-1, self.node_features)
        n = x.shape[0]
        if n > self.max_nodes or np.shape(adjacency) != (n, n):
            raise ValueError(f"need n <= {self.max_nodes} nodes and an [n, n] adjacency, got x {x.shape} and adjacency {np.shape(adjacency)}")
        obs = np.zeros(self.shape, dtype=np.float32)
        obs[:n, 0] = 1.0
        obs[:n, 1:1 + self.node_features] = x
        obs[:n, 1 + self.node_features:1 + self.node_features + n] = adjacency
        return obs

    def contains(self, x: object) -> bool:
        """A Box member whose mask and adjacency are 0/1, padded rows zero, and edges only
        between real nodes."""
        if not super().contains(x):
            return False
        obs = np.asarray(x)
        mask = obs[:, 0]
        adjacency = obs[:, 1 + self.node_features:]
        if not (np.isin(mask, (0.0, 1.0)).all() and np.isin(adjacency, (0.0, 1.0)).all()):
            return False
        real = mask == 1.0
        return not obs[~real].any() and not adjacency[:, ~real].any()

    def sample(self, mask: None = None, probability: None = None) -> np.ndarray:
        """A random graph: 1..max_nodes nodes, standard-normal features, each undirected edge
        present with probability 1/2."""
        n = int(self.np_random.integers(1, self.max_nodes + 1))
        upper = np.triu(self.np_random.random((n, n)) < 0.5, k=1)
        x = self.np_random.standard_normal((n, self.node_features))
        return self.pack(x, (upper | upper.T).astype(np.float32))

    def __repr__(self) -> str:
        return f"PaddedGraph(max_nodes={self.max_nodes}, node_features={self.node_features})"


def padded_to_graph_batch(obs: Tensor, node_features: int) -> tuple[GraphBatch, Tensor]:
    """Turns ``[B, max_nodes, 1 + node_features + max_nodes]`` observations into a
    ``GraphBatch`` with tensor ops (no loop over B).

    Returns the batch and ``slots [num_nodes]``: the flat position ``b * max_nodes + v`` of each
    real node, so node outputs can be put back in their padded place.
    """
    if obs.dim() != 3 or obs.shape[2] != 1 + node_features + obs.shape[1]:
        raise ValueError(f"padded graphs with {node_features} node features must be [B, N, {1 + node_features} + N], "
                         f"got shape {tuple(obs.shape)}")
    num_graphs, max_nodes = obs.shape[0], obs.shape[1]
    obs = obs.float()
    mask = obs[..., 0] > 0.5                                     # [B, N]
    slots = mask.reshape(-1).nonzero().squeeze(1)                # real nodes, in row order
    node_id = torch.cumsum(mask.reshape(-1).long(), 0) - 1       # flat slot -> compact node id
    x = obs[..., 1:1 + node_features].reshape(-1, node_features)[slots]
    edges = (obs[..., 1 + node_features:] > 0.5) & mask.unsqueeze(2) & mask.unsqueeze(1)
    graph, source, target = edges.nonzero(as_tuple=True)
    first = graph * max_nodes
    edge_index = torch.stack([node_id[first + source], node_id[first + target]])
    batch = torch.div(slots, max_nodes, rounding_mode="floor")
    return GraphBatch(x, edge_index, batch, num_graphs), slots
