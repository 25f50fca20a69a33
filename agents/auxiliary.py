"""The glue between an agent and its auxiliary representation objectives (``--aux curl,dbc``).

``Auxiliary.from_config`` builds the objectives ``config.aux`` names on the agent's encoder.
In ``joint`` mode the agent adds ``joint_loss(batch)`` (``aux_coef`` times the sum of the
objectives' losses) to its own loss before backward, with ``parameters_for_agent_optimizer()``
in its optimiser; the objectives then reuse the agent's own ``phi(batch.obs)`` from that loss
(see ``AgentLatent``), so an objective on ``phi(s)`` adds no encoder pass of its own, and
off-policy agents train on ``agent_view(batch)`` (CURL's query view). In ``separate`` mode
``separate_step(batch)`` takes its own Adam step on the encoder and the objectives every
``aux_every`` calls. Either way the agent calls ``after_update()`` after each of its optimiser
steps (momentum encoders follow the encoder).

The objectives are submodules, so they are saved with the agent's ``state_dict``; the encoder
is not (the agent owns and saves it); the separate optimiser and the call counter are in
``training_state()`` for exact resumes.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import torch
from gymnasium import spaces
from torch import Tensor, nn

from agents.config import AgentConfig
from replay import Batch
from representation.aux import AuxObjective, aux_class, make_aux
from representation.encoders import Encoder


class AgentLatent:
    """Remembers the encoder's latest output computed with autograd, and the input it came from.

    A forward hook on the agent's encoder: when the agent's loss encodes ``batch.obs``, the
    joint auxiliary loss on the same batch takes that latent (``take(batch.obs)``, matched by
    tensor identity) and backpropagates through the same graph: one encoder forward and backward
    serve both losses, with the gradient their sum would get from two passes. Passes without
    autograd (acting, targets) and passes inside ``torch.compile`` (whose intermediates are not
    graph outputs) are not remembered; then the objectives encode the batch themselves.
    """

    def __init__(self, encoder: Encoder):
        self.latest: tuple[Tensor, Tensor] | None = None

        def remember(module: nn.Module, inputs: tuple, output: Any) -> None:
            # A deep copy of the encoder (a target network) carries this hook too: ignore it.
            if (module is encoder and torch.is_grad_enabled() and isinstance(output, Tensor)
                    and output.requires_grad and not torch.compiler.is_compiling()):
                self.latest = (inputs[0], output)

        encoder.register_forward_hook(remember)

    def take(self, obs: Tensor) -> Tensor | None:
        """``phi(obs)`` if the encoder's latest autograd pass was on this very tensor; forgets it."""
        latest, self.latest = self.latest, None
        return latest[1] if latest is not None and latest[0] is obs else None

    def forget(self) -> None:
        self.latest = None


def parse_aux_names(aux: str) -> list[str]:
    """``"curl, dbc"`` -> ``["curl", "dbc"]``; ``"none"`` or ``""`` -> ``[]``."""
    names = [name.strip() for name in aux.split(",") if name.strip()]
    if names == ["none"]:
        return []
    if "none" in names:
        raise ValueError(f"aux 'none' cannot be combined with other objectives, got '{aux}'")
    if len(set(names)) != len(names):
        raise ValueError(f"aux names an objective twice: '{aux}'")
    for name in names:
        aux_class(name)  # ValueError for unknown names
    return names


class Auxiliary(nn.Module):
    def __init__(self, objectives: dict[str, AuxObjective], encoder: Encoder, coef: float, mode: str,
                 every: int, learning_rate: float, adam_eps: float):
        super().__init__()
        if mode not in ("joint", "separate"):
            raise ValueError(f"aux_mode must be joint or separate, got '{mode}'")
        self.objectives = nn.ModuleDict(objectives)
        self.__dict__["encoder"] = encoder  # not a submodule: the agent owns and saves it
        self.coef, self.mode, self.every = float(coef), mode, int(every)
        self.needs_next_obs = any(objective.needs_next_obs for objective in objectives.values())
        self.calls = 0
        self.optimizer: torch.optim.Optimizer | None = None
        self.agent_latent = AgentLatent(encoder) if mode == "joint" else None
        if mode == "separate":
            params = [p for p in encoder.parameters() if p.requires_grad] + self._objective_parameters()
            self.optimizer = torch.optim.Adam(params, lr=learning_rate, eps=adam_eps)

    @classmethod
    def from_config(cls, config: AgentConfig, encoder: Encoder, observation_space: spaces.Space,
                    action_space: spaces.Space, device: torch.device | str) -> "Auxiliary | None":
        """The objectives ``config.aux`` names on ``encoder`` (None for ``aux == "none"``).

        ``config.aux_options[name]`` are objective ``name``'s options; options an objective
        takes from the agent (``gamma`` for dbc) default to the agent's setting. The separate
        optimiser uses the agent's ``learning_rate`` and ``adam_eps``.
        """
        names = parse_aux_names(config.aux)
        if not isinstance(config.aux_options, dict):
            raise ValueError(f"aux_options must map objective names to options, got {config.aux_options!r}")
        stray = sorted(set(config.aux_options) - set(names))
        if stray:
            raise ValueError(f"aux_options given for objective(s) not in --aux: {', '.join(stray)}")
        if not names:
            return None
        objectives = {}
        for name in names:
            options = config.aux_options.get(name, {})
            if not isinstance(options, dict):
                raise ValueError(f"aux_options['{name}'] must be a dict of options, got {options!r}")
            options = dict(options)
            for setting in aux_class(name).agent_defaults:
                if hasattr(config, setting):
                    options.setdefault(setting, getattr(config, setting))
            objectives[name] = make_aux(name, encoder, observation_space, action_space, **options)
        auxiliary = cls(objectives, encoder, config.aux_coef, config.aux_mode, config.aux_every,
                        learning_rate=getattr(config, "learning_rate", 1e-3), adam_eps=getattr(config, "adam_eps", 1e-8))
        return auxiliary.to(device)

    def _objective_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.objectives.parameters() if p.requires_grad]

    def parameters_for_agent_optimizer(self) -> list[nn.Parameter]:
        """The objectives' trainable parameters in joint mode (the agent's optimiser steps them); none otherwise."""
        return self._objective_parameters() if self.mode == "joint" else []

    def _losses(self, batch: Batch, latent: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        total: Tensor | float = 0.0
        metrics: dict[str, Tensor] = {}
        for objective in self.objectives.values():
            loss, objective_metrics = objective.loss(batch, self.encoder, latent)
            total = total + loss
            metrics.update(objective_metrics)
        return self.coef * total, metrics

    def agent_view(self, batch: Batch) -> Batch:
        """The batch an off-policy agent trains on: in joint mode, an objective may replace ``obs``
        by a view it shares with the agent's loss (CURL's augmented anchor)."""
        if self.mode != "joint":
            return batch
        obs = batch.obs
        for objective in self.objectives.values():
            obs = objective.view_for_agent(obs)
        return batch if obs is batch.obs else dataclasses.replace(batch, obs=obs)

    def joint_loss(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """``aux_coef * sum of losses`` to add to the agent's loss; zero (no metrics) in separate mode."""
        if self.mode != "joint":
            return torch.zeros((), device=batch.obs.device), {}
        return self._losses(batch, self.agent_latent.take(batch.obs))

    def separate_step(self, batch: Batch) -> dict[str, Tensor] | None:
        """In separate mode, every ``aux_every``-th call: one Adam step; returns its metrics."""
        if self.mode != "separate":
            return None
        self.calls += 1
        if self.calls % self.every:
            return None
        loss, metrics = self._losses(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return metrics

    def after_update(self) -> None:
        if self.agent_latent is not None:
            self.agent_latent.forget()  # frees the update's graph if no joint loss took it
        for objective in self.objectives.values():
            objective.after_update(self.encoder)

    def training_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"calls": self.calls}
        if self.optimizer is not None:
            state["optimizer"] = self.optimizer.state_dict()
        return state

    def load_training_state(self, state: dict[str, Any]) -> None:
        self.calls = int(state["calls"])
        if self.optimizer is not None:
            self.optimizer.load_state_dict(state["optimizer"])
