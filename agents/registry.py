"""Agents by name, for the command line and for loading saved agents.

Entries are ``module:Class`` paths imported on first use, so listing the agents is cheap and
each family lives in its own module.
"""
from __future__ import annotations

from importlib import import_module

AGENTS: dict[str, str] = {
    "dqn": "agents.dqn:DQN",
    "ppo": "agents.ppo:PPO",
    "a2c": "agents.a2c:A2C",
    "trpo": "agents.trpo:TRPO",
    "reinforce": "agents.reinforce:REINFORCE",
    "sac": "agents.sac:SAC",
    "qlearning": "agents.tabular:QLearning",
    "sarsa": "agents.tabular:SARSA",
    "expected_sarsa": "agents.tabular:ExpectedSARSA",
}


def agent_class(name: str):
    """The ``Agent`` subclass registered as ``name``; ValueError for unknown names."""
    if name not in AGENTS:
        raise ValueError(f"unknown agent '{name}' (choose from {', '.join(sorted(AGENTS))})")
    module, cls = AGENTS[name].split(":")
    return getattr(import_module(module), cls)
