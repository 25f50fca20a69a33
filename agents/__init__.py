"""Agents and the machinery they share: configs, presets, the Runner, logging, checkpoints."""
from agents.base import Agent
from agents.dqn import DQN, DQNConfig
from agents.ppo import PPO, PPOConfig

__all__ = ["Agent", "DQN", "DQNConfig", "PPO", "PPOConfig"]
