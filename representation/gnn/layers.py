"""Graph layers: index-based aggregation, readout, a general message-passing layer, the GCN
layer and a master node.

All layers take the flat batch layout of ``GraphBatch`` (nodes of every graph concatenated,
``edge_index [2, E]`` with row 0 the source and row 1 the target), so one call covers a whole
batch of variable-size graphs.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from representation.linear import Linear

REDUCTIONS = ("sum", "mean", "max")


def scatter(src: Tensor, index: Tensor, dim_size: int, reduce: str = "sum") -> Tensor:
    """Reduces rows of ``src [N, D]`` into ``[dim_size, D]`` by ``index [N]``: the aggregate
    step of message passing (index = target node) and the readout (index = graph id), one
    kernel for a whole batch of variable-size graphs instead of a loop over graphs.

    Groups that receive no row are zero for every reduction (an isolated node gets a zero
    message, an empty graph a zero readout), never ``-inf``.
    """
    check_reduction("reduction", reduce)
    out = src.new_zeros((dim_size, *src.shape[1:]))
    if reduce == "max":
        expanded = index.view(-1, *([1] * (src.dim() - 1))).expand_as(src)
        # include_self=False: the zeros only fill groups that receive nothing.
        return out.scatter_reduce(0, expanded, src, reduce="amax", include_self=False)
    out = out.index_add(0, index, src)
    if reduce == "mean":
        count = torch.bincount(index, minlength=dim_size).clamp(min=1).to(src.dtype)
        out = out / count.view(-1, *([1] * (src.dim() - 1)))
    return out


def global_pool(h: Tensor, batch: Tensor, num_graphs: int, reduce: str = "sum") -> Tensor:
    """Graph readout ``[num_nodes, D] -> [num_graphs, D]``: a permutation-invariant reduction
    over each graph's nodes (sum pooling keeps the most information, Xu et al. 2019)."""
    return scatter(h, batch, num_graphs, reduce)


def check_reduction(kind: str, name: str) -> None:
    """Raises ValueError unless ``name`` is one of ``REDUCTIONS`` (``kind`` names the option)."""
    if name not in REDUCTIONS:
        raise ValueError(f"unknown {kind} '{name}' (choose from {', '.join(REDUCTIONS)})")


class MessagePassing(nn.Module):
    """One round of the message passing neural network (Gilmer et al. 2017, eqs. 1-2).

    gather:    ``m_vw = M([h_v, h_w, e_vw])`` for every edge ``w -> v`` (edge features reach
               the nodes through the message)
    aggregate: ``m_v = AGG_{w in N(v)} m_vw`` with AGG one of sum / mean / max
    update:    ``h_v' = U([h_v, m_v])``
    M is a linear layer with a ReLU, U a linear layer (the caller applies the nonlinearity).
    """

    def __init__(self, in_dim: int, out_dim: int, edge_dim: int = 0, aggregation: str = "sum"):
        super().__init__()
        check_reduction("aggregation", aggregation)
        self.aggregation = aggregation
        self.edge_dim = edge_dim
        self.message_net = nn.Sequential(Linear(2 * in_dim + edge_dim, out_dim), nn.ReLU())
        self.update_net = Linear(in_dim + out_dim, out_dim)

    def gather(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None) -> Tensor:
        source, target = edge_index
        parts = [x[target], x[source]]
        if self.edge_dim:
            if edge_attr is None or edge_attr.shape[1] != self.edge_dim:
                raise ValueError(f"this layer expects edge_attr with {self.edge_dim} features")
            parts.append(edge_attr)
        return self.message_net(torch.cat(parts, dim=1))

    def aggregate(self, messages: Tensor, target: Tensor, num_nodes: int) -> Tensor:
        return scatter(messages, target, num_nodes, self.aggregation)

    def update(self, x: Tensor, aggregated: Tensor) -> Tensor:
        return self.update_net(torch.cat([x, aggregated], dim=1))

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None) -> Tensor:
        messages = self.gather(x, edge_index, edge_attr)
        return self.update(x, self.aggregate(messages, edge_index[1], x.shape[0]))


class GCNConv(nn.Module):
    """Graph convolution of Kipf & Welling (2017), eq. 2: ``H' = D^-1/2 (A+I) D^-1/2 H W + b``.

    ``A[v, w] = 1`` for an edge ``w -> v``; ``D`` is the degree matrix of ``A + I``. Self-loops
    already in ``edge_index`` are dropped so every node has exactly the one of ``A + I``.
    Edge features are not used (a GCN weighs neighbours by degree only).
    """

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True):
        super().__init__()
        self.linear = Linear(in_dim, out_dim, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_dim)) if bias else None

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None) -> Tensor:
        num_nodes = x.shape[0]
        edge_index = edge_index[:, edge_index[0] != edge_index[1]]
        loops = torch.arange(num_nodes, device=x.device).expand(2, num_nodes)
        source, target = torch.cat([edge_index, loops], dim=1)
        degree = torch.bincount(target, minlength=num_nodes).to(x.dtype)
        inv_sqrt = degree.pow(-0.5)  # every node has its self-loop, so degree >= 1
        weight = (inv_sqrt[source] * inv_sqrt[target]).unsqueeze(1)
        xw = self.linear(x)
        out = xw.new_zeros(xw.shape).index_add(0, target, weight * xw[source])
        return out if self.bias is None else out + self.bias


class MasterNode(nn.Module):
    """A virtual node joined to every node of its graph (Gilmer et al. 2017, Sec. 5.2): it
    carries a global state ``u`` that reads all nodes and is read back by all of them, so
    information crosses the graph in one layer whatever its diameter."""

    def __init__(self, dim: int, reduce: str = "sum"):
        super().__init__()
        self.reduce = reduce
        self.update_net = nn.Sequential(Linear(2 * dim, dim), nn.ReLU())
        self.broadcast = Linear(dim, dim)

    def forward(self, h: Tensor, u: Tensor, batch: Tensor) -> tuple[Tensor, Tensor]:
        u = self.update_net(torch.cat([u, global_pool(h, batch, u.shape[0], self.reduce)], dim=1))
        return h + self.broadcast(u)[batch], u
