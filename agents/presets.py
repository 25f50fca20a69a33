"""Presets: published tuned hyperparameters, per agent (``Agent.presets``) and environment family.

An agent's ``presets`` maps an environment id (``Pendulum-v1``), a family (``classic``: discrete
actions and vector observations; ``atari``; ``box``: continuous actions) or a named preset
(``rainbow``) to settings. Order of precedence: dataclass defaults < preset < explicit settings.
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym

from envs import is_atari
from envs.make import missing_dependency
from representation.encoders import is_image_space

def env_family(env_id: str) -> str:
    """``atari``, ``box`` (continuous actions), ``pixels`` (discrete actions, image observations)
    or ``classic`` (discrete actions, vector observations)."""
    if is_atari(env_id):
        return "atari"
    try:
        env = gym.make(env_id)
    except gym.error.DependencyNotInstalled as error:
        raise missing_dependency(env_id, error) from None
    try:
        if isinstance(env.action_space, gym.spaces.Box):
            return "box"
        return "pixels" if is_image_space(env.observation_space) else "classic"
    finally:
        env.close()


def preset_values(agent_cls, env_id: str, preset: str) -> dict[str, Any]:
    """The settings ``preset`` names for ``agent_cls.presets`` (``auto``: by env id, then family)."""
    table = agent_cls.presets
    agent = agent_cls.name
    if preset == "none":
        return {}
    if preset == "auto":
        return dict(table.get(env_id) or table.get(env_family(env_id), {}))
    if f"{preset}:{env_family(env_id)}" in table:  # a named preset with values per env family
        return dict(table[f"{preset}:{env_family(env_id)}"])
    if preset not in table:
        raise ValueError(f"unknown preset '{preset}' for {agent} (choose from auto, none, {', '.join(table)})")
    return dict(table[preset])


def resolve_config(agent_cls, settings: dict[str, Any]):
    """``agent_cls.config_class`` from its defaults, the preset, then ``settings``."""
    from envs import check_env_id

    defaults = agent_cls.config_class()
    env_id = settings.get("env", defaults.env)
    check_env_id(env_id)
    values = preset_values(agent_cls, env_id, settings.get("preset", defaults.preset))
    if settings.get("encoder_checkpoint"):
        values.pop("encoder", None)  # the file's architecture, not the preset's
    if settings.get("encoder", "auto") != values.get("encoder", "auto"):
        values.pop("encoder_options", None)  # the preset's options are for the preset's encoder
    values.update(settings)
    return agent_cls.config_class.from_dict(values)
