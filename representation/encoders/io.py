"""Encoder files: the hand-over from pre-training (SSL, VAE, ...) to any agent.

A file holds the encoder's registry name, its constructor options and its weights; the agent
rebuilds the encoder for its own observation space and loads the weights. Files are read with
``weights_only=True``, so loading one never runs code.
"""
from __future__ import annotations

import os
from typing import Any

from representation.encoders.base import Encoder
from representation.files import load_tagged, save_atomic

FORMAT = "reprl-encoder-v1"


def save_encoder(encoder: Encoder, name: str, options: dict[str, Any], path: str | os.PathLike) -> None:
    save_atomic({"format": FORMAT, "name": name, "options": options,
                 "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()}}, path)


class EncoderHandOver:
    """A model whose representation an agent can take over (generative models, graph networks):
    ``encoder_for_agents`` builds it as an agent encoder, ``export_encoder`` writes the file that
    ``--encoder-checkpoint`` loads."""

    def encoder_for_agents(self, **choices: Any) -> tuple[Encoder, str, dict[str, Any]]:
        """The model's representation of an observation as an agent encoder, with the registry
        name and options that rebuild it for an agent (``representation.encoders.make_encoder``)."""
        raise ValueError(f"a {type(self).__name__} has no encoder to hand to an agent")

    def export_encoder(self, path: str | os.PathLike, **choices: Any) -> tuple[str, dict[str, Any]]:
        """Writes ``encoder_for_agents(**choices)`` as an encoder file an agent loads with
        ``--encoder-checkpoint``; returns the encoder's name and options."""
        encoder, name, options = self.encoder_for_agents(**choices)
        save_encoder(encoder, name, options, path)
        return name, options


def read_encoder_file(path: str | os.PathLike) -> dict[str, Any]:
    """Returns ``{"name", "options", "state_dict"}``; raises ValueError with a one-line reason."""
    return load_tagged(path, FORMAT, "encoder file")


def load_encoder_weights(encoder: Encoder, payload: dict[str, Any], path: str | os.PathLike = "") -> None:
    try:
        encoder.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        # torch's message opens with a header line ("Error(s) in loading state_dict for ..."); the
        # first mismatch follows it
        lines = str(error).strip().splitlines()
        detail = lines[1].strip() if len(lines) > 1 else lines[0]
        raise ValueError(f"encoder checkpoint '{path}' does not fit this observation space: {detail}") from None
