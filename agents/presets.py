"""Presets: published tuned hyperparameters, per agent (``Agent.presets``) and environment family.

An agent's ``presets`` maps an environment id (``Pendulum-v1``), a family (``classic``: discrete
actions and vector observations; ``atari``; ``box``: continuous actions) or a named preset
(``rainbow``) to settings. Order of precedence: dataclass defaults < preset < explicit settings.
A preset's ``encoder_options`` are for its own encoder (the mlp unless it names one): they are
dropped when the run builds another one, e.g. the gnn that ``encoder="auto"`` picks for graphs.
"""
from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym

from envs import is_atari
from envs.make import missing_dependency
from representation.encoders import default_encoder_name, is_image_space


@functools.lru_cache(maxsize=None)
def env_spaces(env_id: str) -> tuple[gym.Space, gym.Space]:
    """The observation and action spaces of ``gym.make(env_id)``, made once per id (a grid
    resolves a config per agent and seed, each asking for the family and the encoder)."""
    try:
        env = gym.make(env_id)
    except gym.error.DependencyNotInstalled as error:
        raise missing_dependency(env_id, error) from None
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


def env_family(env_id: str) -> str:
    """``atari``, ``box`` (continuous actions), ``pixels`` (discrete actions, image observations)
    or ``classic`` (discrete actions, vector observations)."""
    if is_atari(env_id):
        return "atari"
    observation_space, action_space = env_spaces(env_id)
    if isinstance(action_space, gym.spaces.Box):
        return "box"
    return "pixels" if is_image_space(observation_space) else "classic"


def built_encoder(env_id: str, settings: dict[str, Any], preset: dict[str, Any]) -> str:
    """The encoder a run builds: the explicit one, else the preset's, else the default for the
    env's observations (``encoder="auto"``)."""
    name = settings.get("encoder", "auto")
    if name == "auto":
        name = preset.get("encoder", "auto")
    if name != "auto":
        return name
    return "nature" if is_atari(env_id) else default_encoder_name(env_spaces(env_id)[0])


def preset_values(agent_cls, env_id: str, preset: str) -> dict[str, Any]:
    """The settings ``preset`` names for ``agent_cls.presets`` (``auto``: by env id, then family)."""
    table = agent_cls.presets
    agent = agent_cls.name
    if preset == "none":
        return {}
    if preset == "auto":  # (an env's own values by its registry name: my_envs:Acrobot-v1 is Acrobot-v1)
        return dict(table.get(env_id.partition(":")[2] or env_id) or table.get(env_family(env_id), {}))
    family = env_family(env_id)
    if f"{preset}:{family}" in table:  # a named preset with values per env family
        return dict(table[f"{preset}:{family}"])
    if preset in table:
        return dict(table[preset])
    families = [key.split(":")[1] for key in table if key.startswith(f"{preset}:")]
    if families:
        raise ValueError(f"preset '{preset}' of {agent} is for {' and '.join(families)} envs; {env_id} is a {family} env")
    names = dict.fromkeys(key.split(":")[0] for key in table)  # in order, each named preset once
    raise ValueError(f"unknown preset '{preset}' for {agent} (choose from auto, none, {', '.join(names)})")


def resolve_config(agent_cls, settings: dict[str, Any]):
    """``agent_cls.config_class`` from its defaults, the preset, then ``settings``."""
    from envs import check_env_id

    defaults = agent_cls.config_class()
    env_id = settings.get("env", defaults.env)
    check_env_id(env_id)
    values = preset_values(agent_cls, env_id, settings.get("preset", defaults.preset))
    options_encoder = values.get("encoder", "mlp")  # the encoder the preset's encoder_options are for
    if settings.get("encoder_checkpoint"):
        values.pop("encoder", None)  # the file's architecture, not the preset's
    if "encoder_options" in values and built_encoder(env_id, settings, values) != options_encoder:
        values.pop("encoder_options")
    values.update(settings)  # explicit encoder_options apply whatever the encoder
    return agent_cls.config_class.from_dict(values)
