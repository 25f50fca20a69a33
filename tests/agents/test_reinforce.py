"""REINFORCE: complete-episode masks, returns and baselines against loops, the gradient estimate
against the analytic policy gradient of a two-armed bandit, and learning."""
import json

import pytest
import torch
from gymnasium import spaces

from agents.reinforce import REINFORCE, REINFORCEConfig, complete_episode_mask, episode_weights

GAMMA = 0.9
# Env 0: an episode under way at the start (not fresh), one complete episode, an unfinished tail.
# Env 1: fresh; an episode truncated at t=2, then a terminated one. Env 2: one episode, never ends.
TERMINATED = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 0, 0], [0, 0, 0], [1, 1, 0], [0, 0, 0]], dtype=torch.bool)
TRUNCATED = torch.tensor([[0, 0, 0], [0, 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]], dtype=torch.bool)
FRESH = torch.tensor([False, True, True])
REWARD = torch.arange(18, dtype=torch.float32).view(6, 3) / 10 - 0.5
FINAL_VALUE = torch.where(TRUNCATED, torch.tensor(2.5), torch.tensor(0.0))


def loop_reference(reward_to_go: bool, final_value: torch.Tensor = FINAL_VALUE):
    """Per env, per step: (in a complete episode?, weight) by walking episodes one by one."""
    mask = torch.zeros_like(TERMINATED)
    weights = torch.zeros_like(REWARD)
    for e in range(3):
        start = 0
        for t in range(6):
            if TERMINATED[t, e] or TRUNCATED[t, e]:
                bootstrap = float(final_value[t, e])
                returns = []
                for k in range(t, start - 1, -1):
                    bootstrap = float(REWARD[k, e]) + GAMMA * bootstrap
                    returns.insert(0, bootstrap)
                for k in range(start, t + 1):
                    weights[k, e] = returns[k - start] if reward_to_go else returns[0]
                    mask[k, e] = start > 0 or bool(FRESH[e])
                start = t + 1
    return mask, weights


@pytest.mark.parametrize("reward_to_go", [True, False])
def test_mask_and_returns_match_a_loop_over_episodes(reward_to_go):
    mask = complete_episode_mask(TERMINATED | TRUNCATED, FRESH)
    weights = episode_weights(REWARD, TERMINATED, TRUNCATED, FINAL_VALUE, GAMMA, reward_to_go)
    expected_mask, expected_weights = loop_reference(reward_to_go)
    assert torch.equal(mask, expected_mask)
    torch.testing.assert_close(weights[mask], expected_weights[mask])


def filled_agent(baseline: str, reward_to_go: bool = True) -> REINFORCE:
    config = REINFORCEConfig(baseline=baseline, reward_to_go=reward_to_go, gamma=GAMMA, num_steps=6,
                             encoder_options={"hidden_sizes": [8]})
    agent = REINFORCE(config, spaces.Box(-1, 1, (2,)), spaces.Discrete(2))
    agent.setup_training(3)
    agent.fresh.copy_(FRESH)
    generator = torch.Generator().manual_seed(0)
    for t in range(6):
        agent.buffer.add(torch.randn(3, 2, generator=generator), torch.tensor([0, 1, 1]), torch.zeros(3),
                         torch.randn(3, generator=generator), REWARD[t], TERMINATED[t], TRUNCATED[t],
                         torch.where(TRUNCATED[t], FINAL_VALUE[t], torch.tensor(float("nan"))))
    return agent


@pytest.mark.parametrize("baseline", ["none", "mean", "value"])
def test_baselines_match_a_loop(baseline):
    agent = filled_agent(baseline)
    batch, episodes = agent.rollout_batch()
    # without a learned value, truncated episodes are not bootstrapped
    mask, returns = loop_reference(True, FINAL_VALUE if baseline == "value" else torch.zeros_like(FINAL_VALUE))
    returns = [float(returns[t, e]) for t in range(6) for e in range(3) if mask[t, e]]
    values = [float(agent.buffer.value[t, e]) for t in range(6) for e in range(3) if mask[t, e]]
    mean = sum(returns) / len(returns)
    expected = {"none": returns, "mean": [g - mean for g in returns],
                "value": [g - v for g, v in zip(returns, values)]}[baseline]
    assert int(episodes) == 3 and batch.obs.shape[0] == len(returns) == 8
    torch.testing.assert_close(batch.returns, torch.tensor(returns))
    torch.testing.assert_close(batch.advantage, torch.tensor(expected))


@pytest.mark.parametrize("ent_coef", [0.0, 0.1])
@pytest.mark.parametrize("baseline", ["none", "value"])
def test_the_loss_adds_the_value_loss_for_a_value_baseline_and_the_entropy_bonus_when_there_is_one(baseline, ent_coef):
    agent = filled_agent(baseline)
    agent.config.ent_coef = ent_coef
    batch, _ = agent.rollout_batch()
    loss, metrics = agent.loss(batch)
    expected = metrics["losses/policy_loss"] - ent_coef * metrics["losses/entropy"]
    if baseline == "value":
        expected = expected + agent.config.vf_coef * metrics["losses/value_loss"]
    torch.testing.assert_close(loss.detach(), expected, rtol=0, atol=1e-7)


@pytest.mark.parametrize("baseline", ["none", "mean"])
def test_gradient_estimate_equals_the_bandit_policy_gradient_in_expectation(baseline):
    """Two arms with mean rewards (1, 0) and noise: d/dz_k sum_a pi_a r_a = pi_k (r_k - J)."""
    num_envs = 20_000
    config = REINFORCEConfig(baseline=baseline, norm_adv=False, num_steps=1, encoder_options={"hidden_sizes": [4]})
    agent = REINFORCE(config, spaces.Box(-1, 1, (1,)), spaces.Discrete(2))
    logits = agent.net.policy.logits
    with torch.no_grad():
        logits.bias.copy_(torch.tensor([0.3, -0.2]))
    agent.setup_training(num_envs)
    obs = torch.zeros(num_envs, 1)  # zero features: the logits are the bias
    action, _, extras = agent.rollout_action(obs, 0)
    mean_reward = torch.tensor([1.0, 0.0])
    reward = mean_reward[action] + 0.1 * torch.randn(num_envs, generator=torch.Generator().manual_seed(0))
    done = torch.ones(num_envs, dtype=torch.bool)
    agent.observe(obs, action, reward, obs, done, ~done, extras)
    agent.optimizer.step = lambda: None  # keep the gradient, leave the weights
    agent.update(agent.rollout_batch()[0])
    probs = torch.softmax(torch.tensor([0.3, -0.2]), 0)
    analytic = probs * (mean_reward - (probs * mean_reward).sum())
    torch.testing.assert_close(-logits.bias.grad, analytic, atol=0.012, rtol=0.0)


@pytest.mark.slow
def test_reinforce_with_value_baseline_learns_cartpole_within_100k_steps(tmp_path):
    agent = REINFORCE.from_env("CartPole-v1", seed=1, steps=100_000, eval_every=0)
    agent.learn(run_dir=tmp_path / "run", progress=False)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["eval_return_mean"] >= 200, summary  # random play scores about 22
