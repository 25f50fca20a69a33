"""Where the critic has its own encoder, on-policy agents compute V(s_t) once per rollout, in one
batch over its T x N observations; the rollout's values, advantages and returns must be those of
V computed at every step."""
from __future__ import annotations

import pytest
import torch

from agents import A2C, PPO, REINFORCE
from agents.multi_seed import build_multi_seed
from envs import make_env
from replay.gae import generalized_advantages

T, N = 6, 4


def collect_rollout(agent, seed: int = 0) -> torch.Tensor:
    """Steps ``agent`` through one rollout of CartPole; returns the observation after it."""
    env = make_env("CartPole-v1", agent.buffer.num_envs, seed=seed, backend="torch")
    obs = env.reset(seed=seed)
    for step in range(T):
        action, env_action, extras = agent.rollout_action(obs, step)
        obs, reward, terminated, truncated, info = env.step(env_action)
        agent.observe(obs, action, reward, info["final_obs"], terminated, truncated, extras)
    return obs


@pytest.mark.parametrize("agent_cls", [A2C, PPO])
def test_separate_critic_values_come_from_one_pass_and_equal_per_step_values(agent_cls):
    agent = agent_cls.from_env("CartPole-v1", num_envs=N, num_steps=T, shared_encoder=False, gamma=0.9, gae_lambda=0.8)
    agent.setup_training(N)
    assert agent.values_per_rollout
    last_obs = collect_rollout(agent)
    _, _, extras = agent.rollout_action(last_obs, T)
    assert "value" not in extras  # the acting pass runs no critic
    with torch.no_grad():
        per_step = torch.stack([agent.net.value(agent.buffer.obs[t]) for t in range(T)])
        last_value = agent.net.value(last_obs)
        agent.buffer.finish(agent.bootstrap_value(last_obs), 0.9, 0.8)
    torch.testing.assert_close(agent.buffer.value, per_step)
    buffer = agent.buffer
    expected = generalized_advantages(buffer.reward, per_step, buffer.terminated, buffer.truncated, last_value,
                                      torch.nan_to_num(buffer.final_value), 0.9, 0.8)
    torch.testing.assert_close(buffer.advantages, expected)
    torch.testing.assert_close(buffer.returns, expected + per_step)


def test_shared_encoder_values_come_with_the_acting_pass():
    agent = A2C.from_env("CartPole-v1", num_envs=N, num_steps=T, shared_encoder=True)
    agent.setup_training(N)
    assert not agent.values_per_rollout
    obs = torch.randn(N, 4, generator=torch.Generator().manual_seed(0))
    _, _, extras = agent.rollout_action(obs, 0)
    with torch.no_grad():
        torch.testing.assert_close(extras["value"], agent.net.value(obs))


def test_reinforce_value_baseline_is_the_critic_at_each_stored_step():
    agent = REINFORCE.from_env("CartPole-v1", num_envs=N, num_steps=T, baseline="value", episodes_per_update=1)
    agent.setup_training(N)
    collect_rollout(agent)
    batch, _ = agent.rollout_batch()
    with torch.no_grad():
        torch.testing.assert_close(batch.value, agent.net.value(batch.obs))


def test_multi_seed_rollout_values_give_each_seed_its_own_critic_on_its_envs():
    template = A2C.from_env("CartPole-v1", num_envs=2, num_steps=T, backend="torch")
    agent = build_multi_seed(A2C, template.config, template.observation_space, template.action_space, [3, 7, 11])
    obs = torch.randn(T, 3 * 2, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        values = agent.rollout_state_values(obs)
        for k, seed_agent in enumerate(agent.seed_agents()):
            envs = slice(2 * k, 2 * k + 2)
            torch.testing.assert_close(values[:, envs], seed_agent.net.value(obs[:, envs]))


@pytest.mark.parametrize("num_seeds", [1, 3])
def test_final_values_come_from_the_critic_on_the_truncated_rows_alone(num_seeds):
    """On the CPU only the truncated envs' final observations go through the critic: their
    values are those of the whole batch's pass, every other row NaN (GAE never reads it), and a
    step without truncations stores no values at all."""
    template = PPO.from_env("CartPole-v1", num_envs=2, num_steps=T, backend="torch")
    agent = template if num_seeds == 1 else build_multi_seed(
        PPO, template.config, template.observation_space, template.action_space, [3, 7, 11])
    next_obs = torch.randn(2 * num_seeds, 4, generator=torch.Generator().manual_seed(2))
    truncated = torch.zeros(2 * num_seeds, dtype=torch.bool)
    assert agent.final_values(next_obs, truncated) is None
    truncated[[1, -1]] = True
    with torch.no_grad():
        values, every_row = agent.final_values(next_obs, truncated), agent.state_value(next_obs)
    torch.testing.assert_close(values[truncated], every_row[truncated])
    assert values[~truncated].isnan().all()
