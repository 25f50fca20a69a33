"""Checkpoint files and the random-number state that makes a resume exact."""
from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch

from representation.files import load_tagged


def load_checkpoint(path: str | os.PathLike, expected_format: str) -> dict[str, Any]:
    """Reads an agent file or a run's checkpoint; never runs code (``weights_only=True``)."""
    return load_tagged(path, expected_format, "checkpoint")


def rng_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [name, torch.from_numpy(keys.copy()), pos, has_gauss, gauss]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy(), pos, has_gauss, gauss))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
