"""Encoders by name, so configs and the command line can pick any of them for any agent."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gymnasium import spaces

from representation.encoders.base import Encoder, is_image_space

EncoderFactory = Callable[..., Encoder]
_ENCODERS: dict[str, EncoderFactory] = {}


def register_encoder(name: str) -> Callable[[EncoderFactory], EncoderFactory]:
    """Class decorator: ``@register_encoder("gnn")`` makes ``--encoder gnn`` available."""
    def decorate(factory: EncoderFactory) -> EncoderFactory:
        _ENCODERS[name] = factory
        return factory
    return decorate


def encoder_names() -> list[str]:
    return sorted(_ENCODERS)


def default_encoder_name(observation_space: spaces.Space) -> str:
    from representation.gnn.padded import PaddedGraph  # not at the top: representation.gnn imports this package
    if isinstance(observation_space, (spaces.Graph, PaddedGraph)):
        return "gnn"
    return "nature" if is_image_space(observation_space) else "mlp"


def make_encoder(name: str, observation_space: spaces.Space, **options: Any) -> Encoder:
    """Builds encoder ``name`` (or the default for the space when ``name == "auto"``)."""
    if name == "auto":
        name = default_encoder_name(observation_space)
    if name not in _ENCODERS:
        raise ValueError(f"unknown encoder '{name}' (choose from {', '.join(encoder_names())})")
    try:
        return _ENCODERS[name](observation_space, **options)
    except TypeError as error:
        raise ValueError(f"bad options {options} for encoder '{name}': {error}") from None
