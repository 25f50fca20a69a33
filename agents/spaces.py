"""Gymnasium spaces as plain dicts, so saved agents rebuild their networks without an env."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from representation.gnn.padded import PaddedGraph


def space_to_dict(space: spaces.Space) -> dict[str, Any]:
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": torch.as_tensor(space.nvec)}
    if isinstance(space, PaddedGraph):  # before Box, its base class: the gnn encoder needs the PaddedGraph
        return {"type": "PaddedGraph", "max_nodes": space.max_nodes, "node_features": space.node_features}
    if isinstance(space, spaces.Box):
        return {"type": "Box", "low": torch.as_tensor(space.low), "high": torch.as_tensor(space.high),
                "dtype": str(space.dtype)}
    raise ValueError(f"cannot save an agent for a {type(space).__name__} space "
                     "(only Discrete, MultiDiscrete, Box and PaddedGraph)")


def space_from_dict(data: dict[str, Any]) -> spaces.Space:
    if data["type"] == "Discrete":
        return spaces.Discrete(data["n"], start=data["start"])
    if data["type"] == "MultiDiscrete":
        return spaces.MultiDiscrete(data["nvec"].numpy())
    if data["type"] == "PaddedGraph":
        return PaddedGraph(data["max_nodes"], data["node_features"])
    dtype = np.dtype(data["dtype"])
    return spaces.Box(data["low"].numpy().astype(dtype), data["high"].numpy().astype(dtype), dtype=dtype)
