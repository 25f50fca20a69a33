"""Agents and the machinery they share: configs, presets, the Runner, logging, checkpoints."""
from agents.a2c import A2C, A2CConfig
from agents.base import Agent
from agents.dqn import DQN, DQNConfig
from agents.ppo import PPO, PPOConfig
from agents.reinforce import REINFORCE, REINFORCEConfig
from agents.sac import SAC, SACConfig
from agents.tabular import SARSA, ExpectedSARSA, QLearning, TabularConfig
from agents.trpo import TRPO, TRPOConfig

__all__ = ["Agent", "DQN", "DQNConfig", "PPO", "PPOConfig", "A2C", "A2CConfig", "REINFORCE", "REINFORCEConfig",
           "TRPO", "TRPOConfig", "SAC", "SACConfig", "QLearning", "SARSA", "ExpectedSARSA", "TabularConfig"]
