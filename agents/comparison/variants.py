"""Named variants: an agent under a name of its own with settings of its own, e.g. ``dqn+double``.

A comparison grid runs each variant as its own column beside the plain agents: its runs live in
``OUT/runs/<env>__<variant>__seed<k>/`` and the worker records the name in the run's
``config.json`` (``"variant"``), which the report's loader prefers over ``agent``, so a report
rebuilt from the folders alone has the same columns. A variant's settings win over every
``--set`` (they are what makes it that variant).

On the command line (``--variant``), a variant is either a name from ``CATALOGUE`` or
``NAME=AGENT:key=value,key=value`` with values read as JSON where they parse as JSON, like
``--set``: ``dqn+double=dqn:double=true``, ``rainbow=dqn:preset="rainbow"``.

``encoder_aux_variants`` builds the encoder x auxiliary-objective grid of
``scripts/encoder_experiment.py``, one variant per cell, named ``<encoder>+<aux>``.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.auxiliary import parse_aux_names
from agents.comparison.grid import parse_names, parse_setting
from agents.comparison.runs import VARIANT_KEY
from agents.networks import read_encoder_source
from agents.registry import AGENTS, agent_class
from representation.encoders import encoder_names

# Letters, digits, '_', '+' and '-': the name is part of a folder name, and '.', '=' and ':'
# mean something in --set and --variant.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+\-]*")
# A comma starts the next setting only where a key and '=' follow, so JSON values keep theirs.
_NEXT_SETTING = re.compile(r",(?=\s*[A-Za-z_][A-Za-z0-9_]*\s*=)")


@dataclass(frozen=True)
class Variant:
    """A report column: ``agent`` with ``settings`` (typed, as the agent's config fields)."""

    name: str
    agent: str
    settings: dict[str, Any] = field(default_factory=dict)


# DQN's extensions one at a time, and all of them (Hessel et al. 2018, "Rainbow", AAAI, Fig. 3
# runs the same ablations the other way round). A distributional variant keeps the agent's
# return support (v_min, v_max): set it for the task (--set dqn.v_min=0 --set dqn.v_max=100 on
# CartPole); the rainbow presets carry their own.
CATALOGUE: dict[str, Variant] = {variant.name: variant for variant in (
    Variant("dqn+double", "dqn", {"double": True}),            # van Hasselt et al. 2016, Eq. 4
    Variant("dqn+dueling", "dqn", {"dueling": True}),          # Wang et al. 2016, Eq. 9
    Variant("dqn+noisy", "dqn", {"noisy": True}),              # Fortunato et al. 2018
    Variant("dqn+prioritized", "dqn", {"prioritized": True}),  # Schaul et al. 2016, proportional
    Variant("dqn+nstep", "dqn", {"n_step": 3}),                # n = 3 as in Rainbow
    Variant("dqn+c51", "dqn", {"distributional": True}),       # Bellemare et al. 2017
    Variant("rainbow", "dqn", {"preset": "rainbow"}),          # Hessel et al. 2018, Table 1
)}


def parse_variant(text: str) -> Variant:
    """``NAME`` (from ``CATALOGUE``) or ``NAME=AGENT[:key=value,key=value]`` -> a checked Variant."""
    name, defined, definition = (part.strip() for part in text.partition("="))
    if not defined:
        if name not in CATALOGUE:
            raise ValueError(f"--variant {name}: not a known variant (known: {', '.join(CATALOGUE)}); "
                             "define one as NAME=AGENT:key=value,key=value")
        return CATALOGUE[name]
    if not _NAME.fullmatch(name):
        raise ValueError(f"--variant '{text}': the name must start with a letter or digit and hold only "
                         "letters, digits, '_', '+' and '-'")
    if name in AGENTS:
        raise ValueError(f"--variant {name}: '{name}' is an agent's name, give the variant its own")
    agent, _, assignments = (part.strip() for part in definition.partition(":"))
    if agent not in AGENTS:
        raise ValueError(f"--variant {name}: unknown agent '{agent}' (choose from {', '.join(sorted(AGENTS))})")
    settings: dict[str, Any] = {}
    for assignment in _NEXT_SETTING.split(assignments) if assignments else []:
        key, sep, value = (part.strip() for part in assignment.partition("="))
        if not sep or not key:
            raise ValueError(f"--variant {name}: expects key=value settings, got '{assignment}'")
        if key in settings:
            raise ValueError(f"--variant {name}: '{key}' is set twice")
        settings[key] = parse_setting(agent, key, value, f"--variant {name}")
    return Variant(name, agent, settings)


def variant_agents(agents: list[str], variants: list[Variant]) -> list[str]:
    """The agents a grid builds: the plain ones, then those of its variants, each once (the
    scopes ``--set agent.key=value`` may name)."""
    return list(dict.fromkeys([*agents, *(variant.agent for variant in variants)]))


def encoder_aux_variants(agent: str, encoders: str | list[str], aux: str | list[str], fine_tune: bool = False
                         ) -> tuple[list[Variant], list[dict[str, Any]]]:
    """The grid ``encoders x aux`` for ``agent``: one variant ``<encoder>+<aux>`` per cell, and
    the cells as the report's ``factors`` list them (``{"variant", "levels": [encoder, aux]}``).

    An encoder level is a registered encoder trained from scratch, or a pre-trained encoder (see
    ``encoder_file_level``), frozen unless ``fine_tune``. An aux level names one objective,
    ``none``, or several joined by '+' (``curl+dbc``).
    """
    agent_class(agent)  # ValueError for unknown agents
    encoders, aux = parse_names(encoders, "encoders"), parse_names(aux, "aux objectives")
    levels = [(encoder, {"encoder": encoder}) if encoder in encoder_names()
              else encoder_file_level(encoder, fine_tune) for encoder in encoders]
    for level in aux:
        parse_aux_names(level.replace("+", ","))  # ValueError for unknown objectives
    variants, cells = [], []
    for encoder, encoder_settings in levels:
        for level in aux:
            name = f"{encoder}+{level}"
            variants.append(Variant(name, agent, {**encoder_settings, "aux": level.replace("+", ",")}))
            cells.append({"variant": name, "levels": [encoder, level]})
    return variants, cells


def encoder_file_level(text: str, fine_tune: bool) -> tuple[str, dict[str, Any]]:
    """A pre-trained encoder (an encoder file, or an agent's file or run checkpoint) as a grid
    level: ``NAME=PATH``, or ``PATH`` named after the file's folder (``runs/pong_byol/encoder.pt``
    is ``pong_byol``, as ``scripts/pretrain.py --out`` names it). Returns the level's name and the
    settings that load the file."""
    name, named, path = (part.strip() for part in text.partition("="))
    if not named:
        name, path = Path(text).resolve().parent.name, text
    if not named and not Path(path).is_file():
        raise ValueError(f"unknown encoder '{text}' (choose from {', '.join(encoder_names())}, or give an "
                         "encoder file as NAME=PATH or PATH)")
    read_encoder_source(path)  # ValueError for a missing or foreign file
    if not _NAME.fullmatch(name) or name in encoder_names():
        raise ValueError(f"encoder level '{text}': name it NAME=PATH with a NAME of letters, digits, '_' and '-' "
                         "that is not a registered encoder's")
    return name, {"encoder_checkpoint": str(Path(path).resolve()), "freeze_encoder": not fine_tune}


def record_variant(run_dir: str | Path, name: str) -> None:
    """Adds ``"variant": name`` to the run's ``config.json``, atomically (temp file, rename)."""
    path = Path(run_dir) / "config.json"
    config = json.loads(path.read_text())
    config[VARIANT_KEY] = name
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(config, indent=2) + "\n")
    os.replace(temporary, path)
