"""SAC: the tanh-squashed Gaussian's density, the temperature moving toward the target entropy,
the soft target of the discrete critic against a loop, and learning Pendulum."""
import json
import math

import pytest
import torch
from gymnasium import spaces

from agents.networks import TanhGaussianHead
from agents.sac import SAC, SACConfig
from replay import Batch
from representation.ssl import heads

SMALL = dict(head_width=32, encoder_options={"hidden_sizes": [32], "activation": "relu"})


def test_tanh_gaussian_log_prob_is_the_change_of_variables_of_the_gaussian():
    head = TanhGaussianHead(3, 2)
    features = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(1)
    action, log_prob = head.sample(features)
    gaussian = head(features)
    u = torch.atanh(action.double())
    expected = gaussian.log_prob(u.float()).double().sum(-1) - torch.log(1 - torch.tanh(u) ** 2).sum(-1)
    torch.testing.assert_close(log_prob.double(), expected, rtol=1e-4, atol=1e-4)
    assert action.abs().max() < 1.0
    deterministic, _ = head.sample(features, deterministic=True)
    torch.testing.assert_close(deterministic, torch.tanh(gaussian.mean))


def random_batch(agent: SAC, size: int = 64) -> Batch:
    generator = torch.Generator().manual_seed(0)
    obs_dim = agent.observation_space.shape[0]
    if agent.num_actions:
        action = torch.randint(agent.num_actions, (size,), generator=generator)
    else:
        action = torch.rand(size, 1, generator=generator) * 2 - 1
    return Batch(obs=torch.randn(size, obs_dim, generator=generator), action=action,
                 reward=torch.randn(size, generator=generator), next_obs=torch.randn(size, obs_dim, generator=generator),
                 terminated=(torch.rand(size, generator=generator) < 0.2).float(), discount=torch.full((size,), 0.99),
                 weights=torch.ones(size))


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "CartPole-v1"])
def test_temperature_moves_toward_the_target_entropy(env_id):
    """Entropy below the target raises alpha; above it lowers alpha."""
    for target, direction in ((100.0, 1.0), (-100.0, -1.0)):
        agent = SAC.from_env(env_id, alpha=0.5, **SMALL)
        agent.target_entropy = target
        alphas = [float(agent.alpha)]
        for _ in range(5):
            agent.update(random_batch(agent))
            alphas.append(float(agent.alpha))
        assert all(direction * (b - a) > 0.0 for a, b in zip(alphas, alphas[1:])), (target, alphas)
    fixed = SAC.from_env(env_id, alpha=0.5, autotune=False, **SMALL)
    fixed.update(random_batch(fixed))
    assert float(fixed.alpha) == pytest.approx(0.5)


def test_target_entropy_defaults():
    assert SAC.from_env("Pendulum-v1").target_entropy == -1.0
    assert SAC.from_env("CartPole-v1").target_entropy == pytest.approx(0.98 * math.log(2))


def test_discrete_critic_loss_matches_a_loop():
    agent = SAC.from_env("CartPole-v1", alpha=0.3, autotune=False, **SMALL)
    batch = random_batch(agent, size=6)
    with torch.no_grad():
        q1, q2 = agent.critic(batch.obs)
        tq1, tq2 = agent.critic_target(batch.next_obs)
        probs, log_probs = agent.policy(batch.next_obs)
    terms = []
    for i in range(6):
        soft_value = sum(float(probs[i, a]) * (min(float(tq1[i, a]), float(tq2[i, a])) - 0.3 * float(log_probs[i, a]))
                         for a in range(2))
        y = float(batch.reward[i]) + 0.99 * (1 - float(batch.terminated[i])) * soft_value
        a = int(batch.action[i])
        terms.append(0.5 * ((float(q1[i, a]) - y) ** 2 + (float(q2[i, a]) - y) ** 2))
    metrics = agent.update(batch)
    assert metrics["losses/critic_loss"].item() == pytest.approx(sum(terms) / 6, rel=1e-5)


@pytest.mark.parametrize("compile", [False, True])
def test_the_actor_step_trains_the_actor_alone_through_the_critics(compile):
    """The actor's loss runs through the critics, which its step must not train (nor leave
    gradients in), eagerly and as one compiled graph."""
    agent = SAC.from_env("Pendulum-v1", compile=compile, **SMALL)
    batch = random_batch(agent)
    critic_before = [p.clone() for p in agent.critic.parameters()]
    actor_before = [p.clone() for p in agent.actor_parameters()]
    entropy, metrics = agent.gradient_step(agent.actor_optimizer, None, 0.0, batch, agent.alpha, loss="actor_loss",
                                           frozen=agent.critic)
    assert torch.isfinite(metrics["losses/actor_loss"]) and entropy.shape == (64,) and not entropy.requires_grad
    assert all(torch.equal(a, b) for a, b in zip(critic_before, agent.critic.parameters()))
    assert not agent.critic_optimizer.flat_parameters.grad.any()
    assert all(p.requires_grad for p in agent.critic.parameters())
    assert not any(torch.equal(a, b) for a, b in zip(actor_before, agent.actor_parameters()))


def test_the_target_critics_take_their_polyak_step_in_one_pass_over_one_tensor():
    agent = SAC.from_env("Pendulum-v1", tau=0.01, **SMALL)
    with torch.no_grad():
        for p in agent.critic.parameters():
            p.add_(torch.randn_like(p))
    targets = list(agent.critic_target.parameters())
    assert heads._dense_span(targets) is not None and heads._dense_span(list(agent.critic.parameters())) is not None
    expected = [0.99 * t + 0.01 * o for t, o in zip(targets, agent.critic.parameters())]
    agent.update_target()
    for target, reference in zip(agent.critic_target.parameters(), expected):
        torch.testing.assert_close(target, reference, rtol=0, atol=1e-6)


def test_actions_are_scaled_to_the_box_and_the_encoder_is_the_critics():
    agent = SAC.from_env("Pendulum-v1", **SMALL)
    agent.setup_training(3)
    stored, env_action, _ = agent.rollout_action(torch.randn(3, 3), step=10**6)
    assert stored.abs().max() <= 1.0
    torch.testing.assert_close(env_action, 2.0 * stored)
    assert agent.critic.encoder is agent.encoder and agent.actor_encoder is not agent.encoder
    shared = SAC.from_env("Pendulum-v1", shared_encoder=True, **SMALL)
    assert shared.actor_encoder is None
    assert not any(p is q for p in shared.actor_parameters() for q in shared.encoder.parameters())


def test_an_unbounded_action_box_is_refused_as_it_cannot_be_squashed_into():
    with pytest.raises(ValueError, match="bounds, which must be finite"):
        SAC(SACConfig(), spaces.Box(-1.0, 1.0, (3,)), spaces.Box(-math.inf, math.inf, (2,)))


@pytest.mark.slow
def test_sac_beats_random_play_on_pendulum_within_2500_steps(tmp_path):
    agent = SAC.from_env("Pendulum-v1", seed=1, steps=2_500, eval_every=0, eval_episodes=5)
    agent.learn(run_dir=tmp_path / "run", progress=False)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["eval_return_mean"] >= -700, summary  # random play scores about -1200


def test_learning_from_the_first_step_waits_for_the_first_sampleable_transition(tmp_path):
    agent = SAC.from_env("Pendulum-v1", steps=40, num_envs=2, learning_starts=0, batch_size=8, eval_every=0,
                         eval_episodes=1, **SMALL)
    initial = [p.clone() for p in agent.parameters()]
    agent.learn(run_dir=tmp_path, progress=False)
    assert not all(torch.equal(a, b) for a, b in zip(initial, agent.parameters()))
