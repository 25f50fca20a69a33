"""Device-resident storage: replay for off-policy agents, rollouts for on-policy ones."""
from replay.batch import Batch
from replay.gae import discounted_reward_to_go, generalized_advantages
from replay.n_step import n_step_window
from replay.replay_buffer import ReplayBuffer
from replay.rollout_buffer import RolloutBuffer
from replay.sum_tree import SumTree

__all__ = ["Batch", "ReplayBuffer", "RolloutBuffer", "SumTree", "discounted_reward_to_go",
           "generalized_advantages", "n_step_window"]
