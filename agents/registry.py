"""Agents by name, for the command line and for loading saved agents."""
from __future__ import annotations

from agents.base import Agent
from agents.dqn import DQN
from agents.ppo import PPO

AGENTS: dict[str, type[Agent]] = {"dqn": DQN, "ppo": PPO}


def agent_class(name: str) -> type[Agent]:
    if name not in AGENTS:
        raise ValueError(f"unknown agent '{name}' (choose from {', '.join(sorted(AGENTS))})")
    return AGENTS[name]
