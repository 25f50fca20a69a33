"""Self-supervised methods by name, for configs and the pre-training command line."""
from __future__ import annotations

from typing import Any

from representation.encoders import Encoder
from representation.ssl.byol import BYOL
from representation.ssl.method import SSLMethod
from representation.ssl.moco import MoCo
from representation.ssl.simclr import SimCLR
from representation.ssl.simsiam import SimSiam

SSL_METHODS: dict[str, type[SSLMethod]] = {"simclr": SimCLR, "moco": MoCo, "byol": BYOL, "simsiam": SimSiam}


def ssl_method_names() -> list[str]:
    return sorted(SSL_METHODS)


def make_ssl_method(name: str, encoder: Encoder, **options: Any) -> SSLMethod:
    """Builds method ``name`` around ``encoder``; ``options`` are the method's constructor keywords."""
    if name not in SSL_METHODS:
        raise ValueError(f"unknown SSL method '{name}' (choose from {', '.join(ssl_method_names())})")
    try:
        return SSL_METHODS[name](encoder, **options)
    except TypeError as error:
        raise ValueError(f"bad options {options} for SSL method '{name}': {error}") from None
