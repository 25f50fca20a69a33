"""``Agent.predict``: numpy in, numpy out, for code stepping a plain Gymnasium env."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents import PPO, SAC
from agents.registry import agent_class


@pytest.mark.parametrize("agent_cls, env_id", [(PPO, "CartPole-v1"), (SAC, "Pendulum-v1"),
                                               (agent_class("qlearning"), "FrozenLake-v1")])
def test_predict_plays_a_gymnasium_episode_with_the_greedy_actions_of_act(agent_cls, env_id):
    agent = agent_cls.from_env(env_id, seed=3)
    env = gym.make(env_id)
    obs, _ = env.reset(seed=0)
    for _ in range(50):
        action = agent.predict(obs)
        expected = agent.act(torch.as_tensor(np.asarray(obs))[None], explore=False)[0]
        assert isinstance(action, (np.ndarray, np.generic)) and np.array_equal(action, expected.numpy())
        assert env.action_space.contains(action)
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            obs, _ = env.reset()


def test_a_batch_gives_one_action_per_observation_and_a_bad_shape_is_named():
    agent = PPO.from_env("CartPole-v1", seed=3)
    batch = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    actions = agent.predict(batch)
    assert actions.shape == (5,)
    assert np.array_equal(actions, agent.act(torch.as_tensor(batch), explore=False).numpy())
    assert np.array_equal(agent.predict(batch.tolist()), actions)
    assert np.array_equal(agent.predict(torch.as_tensor(batch)), actions)
    # Sampled actions come from the policy's distribution: over many draws both actions appear.
    assert set(agent.predict(np.repeat(batch[:1], 200, axis=0), deterministic=False).tolist()) == {0, 1}
    with pytest.raises(ValueError, match=r"expected an observation of shape \(4,\) or a batch of them, got shape \(3,\)"):
        agent.predict(np.zeros(3))
