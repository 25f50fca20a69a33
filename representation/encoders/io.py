"""Encoder files: the hand-over from pre-training (SSL, VAE, ...) to any agent.

A file holds the encoder's registry name, its constructor options and its weights; the agent
rebuilds the encoder for its own observation space and loads the weights. Files are read with
``weights_only=True``, so loading one never runs code.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from representation.encoders.base import Encoder

FORMAT = "reprl-encoder-v1"


def save_encoder(encoder: Encoder, name: str, options: dict[str, Any], path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "name": name, "options": options,
               "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()}}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def read_encoder_file(path: str | os.PathLike) -> dict[str, Any]:
    """Returns ``{"name", "options", "state_dict"}``; raises ValueError with a one-line reason."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"encoder checkpoint '{path}' does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise ValueError(f"encoder checkpoint '{path}' is not readable: {type(error).__name__}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"'{path}' is not a reprl encoder file")
    return payload


def load_encoder_weights(encoder: Encoder, payload: dict[str, Any], path: str | os.PathLike = "") -> None:
    try:
        encoder.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise ValueError(f"encoder checkpoint '{path}' does not fit this observation space: {first}") from None
