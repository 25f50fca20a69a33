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


def test_an_agent_trained_on_normalised_observations_predicts_from_raw_ones_after_save_and_load(tmp_path):
    """Its training env standardised the observations; ``predict`` on a plain Gymnasium env's
    observations applies the same statistics, which the agent's file keeps (SB3 keeps them
    apart, in VecNormalize's own file)."""
    agent = PPO.from_env("Acrobot-v1", seed=3, steps=2_048, num_envs=4, num_steps=64, num_minibatches=4,
                         eval_every=0, eval_episodes=1)
    agent.observation_space.seed(0)
    assert agent.config.normalize_obs  # the zoo preset's
    agent.learn(run_dir=tmp_path / "run", progress=False)
    stats = agent.observation_stats
    assert stats is not None and stats.count > 2_048 and not torch.equal(stats.mean, torch.zeros(6, dtype=torch.float64))
    agent.save(tmp_path / "agent.pt")
    loaded = PPO.load(tmp_path / "agent.pt")
    assert torch.equal(loaded.observation_stats.mean, stats.mean) and torch.equal(loaded.observation_stats.var, stats.var)
    raw = np.stack([agent.observation_space.sample() for _ in range(256)]) * 0.5  # (of uniform draws, seeded)
    standardized = ((torch.as_tensor(raw).double() - stats.mean) / torch.sqrt(stats.var + 1e-8)).clamp(-10, 10).float()
    expected = agent.act(standardized, explore=False).numpy()
    assert np.array_equal(agent.predict(raw), expected) and np.array_equal(loaded.predict(raw), expected)
    assert not np.array_equal(expected, agent.act(torch.as_tensor(raw), explore=False).numpy())
    # Trained on, the loaded agent's statistics go on from where they were: the observations'
    # by 4 reset rows and 2,048 steps' rows more, the discounted returns' (the rewards' scale)
    # by the 2,048 steps' rows.
    rewards = agent.normalization["reward"]
    assert loaded.normalization["reward"].count.item() == rewards.count.item() == pytest.approx(2_048, abs=1e-3)
    loaded.learn(run_dir=tmp_path / "more", progress=False)
    assert loaded.observation_stats.count.item() == pytest.approx(stats.count.item() + 2_052)
    assert loaded.normalization["reward"].count.item() == pytest.approx(rewards.count.item() + 2_048)
