"""PPO's clipped surrogate, value loss and entropy against a per-sample loop."""
import math

import torch

from agents import PPO
from replay import Batch


def test_ppo_losses_match_a_loop_over_samples():
    agent = PPO.from_env("CartPole-v1", norm_adv=False, clip_vloss=True, clip_coef=0.2, ent_coef=0.01, vf_coef=0.5)
    generator = torch.Generator().manual_seed(0)
    obs = torch.randn(6, 4, generator=generator)
    with torch.no_grad():
        dist, value = agent.net(obs)
        action = dist.sample()
        new_log_prob = dist.log_prob(action)
    old_log_prob = new_log_prob + torch.tensor([0.5, -0.5, 0.05, -0.05, 0.3, 0.0])
    old_value = value + torch.tensor([0.5, -0.5, 0.1, 0.0, 1.0, -0.05])
    advantage = torch.tensor([1.0, -2.0, 0.5, 3.0, -1.0, 0.2])
    returns = torch.tensor([1.0, 0.0, -1.0, 2.0, 0.5, 0.3])
    batch = Batch(obs=obs, action=action, log_prob=old_log_prob, value=old_value, advantage=advantage, returns=returns)

    policy_terms, value_terms = [], []
    for i in range(6):
        ratio = math.exp(new_log_prob[i] - old_log_prob[i])
        policy_terms.append(max(-advantage[i] * ratio, -advantage[i] * min(max(ratio, 0.8), 1.2)))
        clipped = old_value[i] + min(max(value[i] - old_value[i], -0.2), 0.2)
        value_terms.append(0.5 * max((value[i] - returns[i]) ** 2, (clipped - returns[i]) ** 2))
    metrics = agent.update(batch)
    torch.testing.assert_close(metrics["losses/policy_loss"], (sum(policy_terms) / 6).float())
    torch.testing.assert_close(metrics["losses/value_loss"], (sum(value_terms) / 6).float())
    torch.testing.assert_close(metrics["losses/entropy"], dist.entropy().mean())


def test_gaussian_policy_actions_are_clipped_to_the_box_but_stored_raw():
    agent = PPO.from_env("Pendulum-v1", log_std_init=2.0)
    agent.setup_training(4)
    obs = torch.randn(4, 3)
    stored, env_action, extras = agent.rollout_action(obs, 0)
    assert env_action.abs().max() <= 2.0 and stored.abs().max() > 2.0
    torch.testing.assert_close(env_action, stored.clamp(-2.0, 2.0))
    torch.testing.assert_close(extras["log_prob"], agent.net.policy(agent.net.encoder(obs)).log_prob(stored))
