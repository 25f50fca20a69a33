"""Gymnasium spaces as plain dicts, so saved agents rebuild their networks without an env."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces


def space_to_dict(space: spaces.Space) -> dict[str, Any]:
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": torch.as_tensor(space.nvec)}
    if isinstance(space, spaces.Box):
        return {"type": "Box", "low": torch.as_tensor(space.low), "high": torch.as_tensor(space.high),
                "dtype": str(space.dtype)}
    raise ValueError(f"cannot save an agent for the space {space}")


def space_from_dict(data: dict[str, Any]) -> spaces.Space:
    if data["type"] == "Discrete":
        return spaces.Discrete(data["n"], start=data["start"])
    if data["type"] == "MultiDiscrete":
        return spaces.MultiDiscrete(data["nvec"].numpy())
    dtype = np.dtype(data["dtype"])
    return spaces.Box(data["low"].numpy().astype(dtype), data["high"].numpy().astype(dtype), dtype=dtype)
