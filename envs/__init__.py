"""Environments: ``make_env`` for any Gymnasium id or Atari game, and envs of our own."""
import ale_py
import gymnasium as gym

from envs.make import check_env_id, env_file_name, is_atari, make_env
from envs.vec_env import VecEnv

gym.register_envs(ale_py)

__all__ = ["make_env", "VecEnv", "is_atari", "check_env_id", "env_file_name"]
import envs.graph_nav  # noqa: E402,F401  (registers reprl/GraphNav-v0)
import envs.distractor  # noqa: E402,F401  (registers reprl/DistractorCartPole-v0)
