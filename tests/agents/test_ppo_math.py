"""PPO's clipped surrogate, value loss and entropy against a per-sample loop."""
import math
from dataclasses import replace

import pytest
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


def _filled_rollout(agent: PPO, num_envs: int = 4) -> None:
    """A rollout of random-policy steps in ``agent.buffer``, finished with GAE."""
    generator = torch.Generator().manual_seed(3)
    agent.setup_training(num_envs)
    for step in range(agent.config.num_steps):
        obs = torch.randn(num_envs, 4, generator=generator)
        action, _, extras = agent.rollout_action(obs, step)
        agent.observe(obs, action, torch.randn(num_envs, generator=generator), obs,
                      torch.zeros(num_envs, dtype=torch.bool), torch.zeros(num_envs, dtype=torch.bool), extras)
    with torch.no_grad():
        agent.buffer.finish(agent.bootstrap_value(torch.randn(num_envs, 4, generator=generator)), 0.99, 0.95)


def test_minibatches_standardise_advantages_within_each_minibatch():
    agent = PPO.from_env("CartPole-v1", num_steps=8, num_minibatches=4, update_epochs=3)
    _filled_rollout(agent)
    raw = agent.buffer.advantages.flatten()
    batches = [agent.minibatch(rollout, rows) for rollout, rows in agent.minibatches()]
    assert len(batches) == 12
    for batch in batches:
        assert torch.allclose(batch.advantage.mean(), torch.zeros(()), atol=1e-6)
        assert torch.allclose(batch.advantage.std(), torch.ones(()), atol=1e-5)
    epoch = torch.cat([b.obs for b in batches[:4]])  # each epoch covers the rollout once
    assert sorted(epoch[:, 0].tolist()) == sorted(agent.buffer.obs.flatten(0, 1)[:, 0].tolist())

    agent.config.num_minibatches = 1  # the whole rollout in storage order, standardised once
    whole = [batch for batch, rows in agent.minibatches() if rows is None]
    assert len(whole) == 3 and all(b is whole[0] for b in whole)
    torch.testing.assert_close(whole[0].advantage, (raw - raw.mean()) / (raw.std() + 1e-8), rtol=0, atol=0)
    agent.config.norm_adv = False
    assert torch.equal(next(iter(agent.minibatches()))[0].advantage, raw)


def test_a_step_without_diagnostics_is_the_same_step():
    """Skipping the logged terms, and the entropy where no bonus uses it, changes no parameter."""
    for ent_coef in (0.0, 0.01):
        agents = [PPO.from_env("CartPole-v1", num_steps=8, ent_coef=ent_coef, seed=5) for _ in range(2)]
        for agent in agents:
            _filled_rollout(agent)
        batch = agents[0].standardized(agents[0].buffer.whole_rollout())
        with_terms = agents[0].update(batch, diagnostics=True)
        assert agents[1].update(batch, diagnostics=False) == {}
        assert set(with_terms) == {"losses/policy_loss", "losses/value_loss", "losses/entropy", "losses/approx_kl",
                                   "losses/clipfrac"}
        assert torch.equal(agents[0].optimizer.flat_parameters.data, agents[1].optimizer.flat_parameters.data)


def test_target_kl_stops_the_epochs_once_exceeded():
    steps_taken = {}
    for target_kl in (0.0, 1e-12):
        agent = PPO.from_env("CartPole-v1", num_steps=8, num_minibatches=2, update_epochs=5, target_kl=target_kl)
        _filled_rollout(agent)
        metrics = agent.train_on_rollout()
        assert "losses/approx_kl" in metrics
        steps_taken[target_kl] = int(agent.optimizer.state[agent.optimizer.flat_parameters.parameter]["step"])
    assert steps_taken == {0.0: 10, 1e-12: 2}  # all 5 epochs of 2 minibatches; one epoch, then its KL > 1e-12


@pytest.mark.parametrize("clip_vloss", [False, True])
def test_the_clipped_objectives_gradient_is_torch_max_of_both_terms(clip_vloss):
    """PPO's loss takes max(term, clipped term) with the gradient of the unclipped term: the value
    and gradient of ``torch.max`` over both terms, each with its own gradient, bit for bit."""
    agent = PPO.from_env("CartPole-v1", num_steps=16, clip_vloss=clip_vloss, ent_coef=0.0, seed=1)
    _filled_rollout(agent)
    batch = agent.standardized(agent.buffer.whole_rollout())
    generator = torch.Generator().manual_seed(4)  # old log-probs and values far enough off to clip
    batch = replace(batch, log_prob=batch.log_prob + 0.3 * torch.randn(batch.log_prob.shape, generator=generator),
                    value=batch.value + torch.randn(batch.value.shape, generator=generator))
    clip = torch.tensor(0.1)

    def reference_loss():
        log_prob, _, value = agent.net.evaluate_actions(batch.obs, batch.action)
        ratio = (log_prob - batch.log_prob).exp()
        a = batch.advantage
        policy = torch.max(-a * ratio, -a * ratio.clamp(1 - clip, 1 + clip)).mean()
        if clip_vloss:
            clipped = batch.value + (value - batch.value).clamp(-clip, clip)
            value_loss = 0.5 * torch.max((value - batch.returns).square(), (clipped - batch.returns).square()).mean()
        else:
            value_loss = 0.5 * (value - batch.returns).square().mean()
        return policy + agent.config.vf_coef * value_loss

    losses, gradients = [], []
    for loss_fn in (reference_loss, lambda: agent.loss(batch, clip, diagnostics=False)[0]):
        agent.optimizer.flat_parameters.zero_grad()
        loss = loss_fn()
        loss.backward()
        losses.append(loss.detach())
        gradients.append(agent.optimizer.flat_parameters.grad.clone())
    ratio_now = (agent.net.evaluate_actions(batch.obs, batch.action)[0] - batch.log_prob).exp()
    assert ((ratio_now - 1).abs() > 0.1).any() and ((ratio_now - 1).abs() < 0.1).any()  # both regimes present
    assert torch.equal(losses[0], losses[1])
    assert torch.equal(gradients[0], gradients[1])


def test_value_clipping_leaves_the_gradient_alone_where_no_value_moved_past_the_clip():
    """Old values within the clip range of the new ones: value clipping must change nothing, bit
    for bit. (``old + (new - old)`` rounds off ``new`` where values are near 0, and such a term
    taken without gradient used to win the max on some samples and zero their value gradient.)"""
    agent = PPO.from_env("CartPole-v1", num_steps=64, clip_vloss=True, ent_coef=0.0, seed=1)
    _filled_rollout(agent)
    batch = agent.standardized(agent.buffer.whole_rollout())
    with torch.no_grad():
        value_now = agent.net.evaluate_actions(batch.obs, batch.action)[2]
    generator = torch.Generator().manual_seed(2)
    batch = replace(batch, value=0.5 * torch.randn(value_now.shape, generator=generator),
                    returns=value_now + 0.01 * torch.randn(value_now.shape, generator=generator))
    clip = torch.tensor(5.0)  # wider than any change of value here
    assert ((value_now - batch.value).abs() < clip).all()
    gradients = []
    for clip_vloss in (True, False):
        agent.config.clip_vloss = clip_vloss
        agent.optimizer.flat_parameters.zero_grad()
        agent.loss(batch, clip, diagnostics=False)[0].backward()
        gradients.append(agent.optimizer.flat_parameters.grad.clone())
    assert torch.equal(gradients[0], gradients[1])
