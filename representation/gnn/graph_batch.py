"""Graphs and batches of graphs as flat tensors.

A batch of graphs is one big disconnected graph: node rows of all graphs are concatenated,
edge indices are shifted by each graph's first node, and ``batch[v]`` names node ``v``'s graph.
Every layer then runs once over the whole batch with index-based scatter (the layout of
PyTorch Geometric, Fey & Lenssen 2019).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from gymnasium.spaces import GraphInstance
from torch import Tensor


def _check_shapes(x: Tensor, edge_index: Tensor, edge_attr: Tensor | None) -> None:
    # Shapes only: range checks would synchronise a GPU on every forward pass.
    if x.dim() != 2:
        raise ValueError(f"node features must be [num_nodes, F], got shape {tuple(x.shape)}")
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_index must be [2, E], got shape {tuple(edge_index.shape)}")
    if edge_attr is not None and (edge_attr.dim() != 2 or edge_attr.shape[0] != edge_index.shape[1]):
        raise ValueError(f"edge_attr must be [E={edge_index.shape[1]}, D], got shape {tuple(edge_attr.shape)}")


@dataclass(frozen=True)
class Graph:
    """One graph: ``x [n, F]`` node features, ``edge_index [2, E]`` (row 0 = source, row 1 =
    target, messages flow source -> target; undirected graphs list both directions), optional
    ``edge_attr [E, D]``."""

    x: Tensor
    edge_index: Tensor
    edge_attr: Tensor | None = None

    def __post_init__(self) -> None:
        _check_shapes(self.x, self.edge_index, self.edge_attr)


@dataclass(frozen=True)
class GraphBatch:
    """``num_graphs`` graphs in one tensor: ``x [total_nodes, F]``, ``edge_index [2, E]`` over
    the concatenated nodes, optional ``edge_attr [E, D]``, ``batch [total_nodes]`` graph ids."""

    x: Tensor
    edge_index: Tensor
    batch: Tensor
    num_graphs: int
    edge_attr: Tensor | None = None

    def __post_init__(self) -> None:
        _check_shapes(self.x, self.edge_index, self.edge_attr)
        if self.batch.shape != (self.x.shape[0],):
            raise ValueError(f"batch must be [num_nodes={self.x.shape[0]}], got shape {tuple(self.batch.shape)}")

    @property
    def num_nodes(self) -> int:
        return self.x.shape[0]

    @property
    def num_edges(self) -> int:
        return self.edge_index.shape[1]

    @property
    def edge_batch(self) -> Tensor:
        """Graph id of each edge (that of its source node)."""
        return self.batch[self.edge_index[0]]

    def node_counts(self) -> Tensor:
        return torch.bincount(self.batch, minlength=self.num_graphs)

    def to(self, device: torch.device | str) -> "GraphBatch":
        attr = None if self.edge_attr is None else self.edge_attr.to(device)
        return GraphBatch(self.x.to(device), self.edge_index.to(device), self.batch.to(device), self.num_graphs, attr)


def graph_from_instance(instance: GraphInstance) -> Graph:
    """Converts a ``gymnasium.spaces.Graph`` sample (numpy nodes, edges, edge_links [E, 2])."""
    links = np.zeros((0, 2)) if instance.edge_links is None else np.asarray(instance.edge_links)
    edge_index = torch.as_tensor(links, dtype=torch.long).reshape(-1, 2).T.contiguous()
    edge_attr = None if instance.edges is None else _rows(instance.edges)
    return Graph(_rows(instance.nodes), edge_index, edge_attr)


def _rows(values: np.ndarray) -> Tensor:
    """``[n, *shape]`` (Box nodes/edges) or ``[n]`` (Discrete ones) as float ``[n, prod(shape)]``."""
    values = np.asarray(values)
    return torch.as_tensor(values, dtype=torch.float32).reshape(values.shape[0], int(np.prod(values.shape[1:])))


def collate(graphs: Sequence[Graph | GraphInstance]) -> GraphBatch:
    """Stacks graphs of any sizes into one ``GraphBatch`` (edge indices shifted per graph)."""
    if len(graphs) == 0:
        raise ValueError("cannot collate an empty list of graphs")
    graphs = [graph_from_instance(g) if isinstance(g, GraphInstance) else g for g in graphs]
    widths = {g.x.shape[1] for g in graphs}
    if len(widths) != 1:
        raise ValueError(f"all graphs must have the same number of node features, got {sorted(widths)}")
    has_attr = {g.edge_attr is not None for g in graphs}
    if len(has_attr) != 1:
        raise ValueError("either every graph or no graph must have edge_attr")
    node_counts = torch.tensor([g.x.shape[0] for g in graphs])
    edge_counts = torch.tensor([g.edge_index.shape[1] for g in graphs])
    local_index = torch.cat([g.edge_index.long().cpu() for g in graphs], dim=1)
    edge_graph = torch.repeat_interleave(torch.arange(len(graphs)), edge_counts)
    if bool(((local_index < 0) | (local_index >= node_counts[edge_graph])).any()):
        raise ValueError("edge_index refers to a node outside its graph")
    first_node = torch.cumsum(node_counts, 0) - node_counts
    edge_index = local_index + first_node[edge_graph]
    batch = torch.repeat_interleave(torch.arange(len(graphs)), node_counts)
    edge_attr = torch.cat([g.edge_attr for g in graphs]) if has_attr == {True} else None
    x = torch.cat([g.x for g in graphs])
    return GraphBatch(x, edge_index.to(x.device), batch.to(x.device), len(graphs), edge_attr)
