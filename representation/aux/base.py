"""The auxiliary-objective contract, the registry by name, and helpers the latent models share.

An auxiliary objective shapes an agent's encoder with a self-supervised loss computed on the
same batches the agent trains on (``replay.Batch``: ``obs``, ``action``, ``reward``,
``next_obs``, ``terminated``). It is handed the agent's own encoder at every call, so it never
owns (or saves) that encoder; its heads, models and momentum copies are its own submodules.
It is also handed ``latent``, the agent's own ``phi(batch.obs)`` from the loss it is added to,
when the agent computed one: an objective on ``phi(s)`` then shares that encoder pass (and its
backward) instead of running its own.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor, nn

from representation.encoders import Encoder

if TYPE_CHECKING:
    from replay import Batch


class AuxObjective(nn.Module):
    """``loss(batch, encoder) -> (loss, metrics)``; ``after_update(encoder)`` after each optimiser step."""

    name: ClassVar[str]
    #: Whether ``loss`` reads ``batch.next_obs`` (on-policy buffers must then store it).
    needs_next_obs: ClassVar[bool] = False
    #: Agent settings used as defaults for constructor options of the same name (e.g. ``gamma``).
    agent_defaults: ClassVar[tuple[str, ...]] = ()

    def loss(self, batch: Batch, encoder: Encoder, latent: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """The scalar loss to minimise and detached metrics named ``aux/<name>_<what>``;
        ``latent`` is ``encoder(batch.obs)`` with its autograd graph, or None to compute here."""
        raise NotImplementedError

    def view_for_agent(self, obs: Tensor) -> Tensor:
        """The observations an off-policy agent should train on in this update (``obs`` itself
        unless the objective shares an augmented view with the agent's loss, as CURL does)."""
        return obs

    def after_update(self, encoder: Encoder) -> None:
        """Called after every optimiser step of ``encoder`` (momentum encoders move here)."""


_OBJECTIVES: dict[str, type[AuxObjective]] = {}


def register_aux(cls: type[AuxObjective]) -> type[AuxObjective]:
    """Class decorator: makes ``--aux <cls.name>`` available."""
    _OBJECTIVES[cls.name] = cls
    return cls


def aux_names() -> list[str]:
    return sorted(_OBJECTIVES)


def aux_class(name: str) -> type[AuxObjective]:
    if name not in _OBJECTIVES:
        raise ValueError(f"unknown auxiliary objective '{name}' (choose from {', '.join(aux_names())})")
    return _OBJECTIVES[name]


def make_aux(name: str, encoder: Encoder, observation_space: spaces.Space, action_space: spaces.Space,
             **options: Any) -> AuxObjective:
    """Builds objective ``name`` for ``encoder``; bad names or options raise one-line ValueErrors."""
    cls = aux_class(name)
    try:
        return cls(encoder, observation_space, action_space, **options)
    except TypeError as error:
        raise ValueError(f"bad options {options} for auxiliary objective '{name}': {error}") from None


# --------------------------------------------------------------- shared by the latent models

def action_dim(action_space: spaces.Space, objective: str) -> int:
    """Width of the action input of a latent model: one-hot for Discrete, the vector for a 1-D Box."""
    if isinstance(action_space, spaces.Discrete):
        return int(action_space.n)
    if isinstance(action_space, spaces.Box) and len(action_space.shape) == 1:
        return int(action_space.shape[0])
    raise ValueError(f"the {objective} objective needs a Discrete or 1-D Box action space, got {action_space}")


def action_features(action: Tensor, action_space: spaces.Space) -> Tensor:
    """Actions ``[B]`` or ``[B, A]`` as float features ``[B, action_dim]``."""
    if isinstance(action_space, spaces.Discrete):
        return F.one_hot(action.long().reshape(-1) - int(action_space.start), int(action_space.n)).float()
    return action.float().reshape(action.shape[0], -1)


def encode_pair(encoder: Encoder, batch: Batch, objective: str, latent: Tensor | None = None,
                next_gradient: bool = True) -> tuple[Tensor, Tensor]:
    """``phi(s), phi(s')``. ``latent`` is ``phi(s)`` when the agent already computed it; with
    ``next_gradient=False``, ``phi(s')`` is a constant (a target) and is encoded without autograd.
    With neither, one encoder pass covers ``obs`` and ``next_obs`` together."""
    if batch.next_obs is None:
        raise ValueError(f"the {objective} objective needs next_obs in the batch "
                         "(on-policy agents: build the rollout buffer with store_next_obs=True)")
    if latent is None and next_gradient:
        return encoder(torch.cat([batch.obs, batch.next_obs])).chunk(2)
    if latent is None:
        latent = encoder(batch.obs)
    with torch.set_grad_enabled(next_gradient and torch.is_grad_enabled()):
        next_latent = encoder(batch.next_obs)
    return latent, next_latent


def check_positive(value: float, name: str, objective: str) -> None:
    if not value > 0:
        raise ValueError(f"{objective} option {name} must be positive, got {value}")


def check_non_negative(value: float, name: str, objective: str) -> None:
    if not value >= 0:
        raise ValueError(f"{objective} option {name} must be >= 0, got {value}")
