"""Saving and loading reprl files: atomic writes and loads that never run code.

Every file reprl writes (agents, checkpoints, encoders, SSL methods, generative and graph models)
is a dict with a ``format`` tag, written to a temporary file that is flushed to disk and renamed
over the target (a crash leaves the old file or the new one, never half of one), and read with
``torch.load(weights_only=True)`` (a file holds tensors and plain values; loading it runs nothing).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


def save_atomic(payload: dict[str, Any], path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        torch.save(payload, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load_tagged(path: str | os.PathLike, expected_format: str, what: str,
                map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The dict in ``path`` whose ``format`` is ``expected_format``; ValueError naming ``what`` else."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"'{path}' is a folder: give the {what} in it")
    if not path.is_file():
        raise ValueError(f"{what} '{path}' does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # truncated, foreign or tampered files raise many types
        raise ValueError(f"{what} '{path}' is corrupt or not a reprl file ({type(error).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != expected_format:
        raise ValueError(f"'{path}' is not a reprl {what}")
    return payload
