"""A small supervised loop for graph tasks (node, edge or graph targets alike)."""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor, nn

from representation.gnn.graph_batch import Graph, GraphBatch, collate


def graph_minibatches(graphs: Sequence[Graph], targets: Tensor, batch_size: int,
                      generator: torch.Generator | None = None) -> Iterator[tuple[GraphBatch, Tensor]]:
    """Shuffled ``(GraphBatch, targets)`` pairs for graph-level targets ``[num_graphs, ...]``."""
    if len(graphs) != targets.shape[0]:
        raise ValueError(f"{len(graphs)} graphs but {targets.shape[0]} targets")
    order = torch.randperm(len(graphs), generator=generator)
    for start in range(0, len(graphs), batch_size):
        chosen = order[start:start + batch_size]
        yield collate([graphs[i] for i in chosen.tolist()]), targets[chosen]


def fit(model: nn.Module, graphs: Sequence[Graph], targets: Tensor, *, epochs: int = 50, batch_size: int = 32,
        lr: float = 1e-3, loss: str = "cross_entropy", seed: int = 0) -> list[float]:
    """Trains ``model`` (e.g. ``GNN(level="graph")``) with Adam on graph-level targets: class
    ids for ``"cross_entropy"``, values ``[num_graphs, out_dim]`` for ``"mse"``. Returns the
    mean loss of each epoch."""
    losses = {"cross_entropy": nn.functional.cross_entropy, "mse": nn.functional.mse_loss}
    if loss not in losses:
        raise ValueError(f"unknown loss '{loss}' (choose from {', '.join(losses)})")
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    model.train()
    for _ in range(epochs):
        total, count = 0.0, 0
        for batch, target in graph_minibatches(graphs, targets, batch_size, generator):
            value = losses[loss](model(batch), target)
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
            total += value.item() * batch.num_graphs
            count += batch.num_graphs
        history.append(total / count)
    return history


@torch.no_grad()
def accuracy(model: nn.Module, graphs: Sequence[Graph], labels: Tensor) -> float:
    """Fraction of graphs whose arg-max prediction equals its label."""
    model.eval()
    return float((model(collate(graphs)).argmax(dim=1) == labels).float().mean())
