"""DQN's flags against brute force: dueling heads, NoisyNet layers, C51 projection, SARSA targets."""
import math

import pytest
import torch

from agents import DQN
from agents.c51 import project_distribution
from agents.q_heads import NoisyLinear, QHead
from replay import Batch
from dqn_tables import TARGET, batch, make_agent


@pytest.mark.parametrize("aggregation", ["mean", "max"])
def test_dueling_head_combines_value_and_centred_advantages(aggregation):
    head = QHead(5, 3, dueling=True, aggregation=aggregation)
    features = torch.randn(4, 5)
    value = head.value[0](features)
    advantage = head.advantage[0](features)
    centre = advantage.mean(1, keepdim=True) if aggregation == "mean" else advantage.max(1, keepdim=True).values
    torch.testing.assert_close(head(features), value + advantage - centre)


def _loop_projection(probs, reward, discount, terminated, support):
    atoms = len(support)
    v_min, v_max = support[0], support[-1]
    delta = (v_max - v_min) / (atoms - 1)
    out = [[0.0] * atoms for _ in probs]
    for i in range(len(probs)):
        for j in range(atoms):
            tz = min(max(reward[i] + discount[i] * (1 - terminated[i]) * support[j], v_min), v_max)
            b = (tz - v_min) / delta
            lower, upper = math.floor(b), math.ceil(b)
            if lower == upper:
                out[i][lower] += probs[i][j]
            else:
                out[i][lower] += probs[i][j] * (upper - b)
                out[i][upper] += probs[i][j] * (b - lower)
    return torch.tensor(out)


def test_c51_projection_matches_a_loop_and_conserves_mass():
    generator = torch.Generator().manual_seed(0)
    support = torch.linspace(-10.0, 10.0, 11, dtype=torch.float64)
    probs = torch.rand(6, 11, generator=generator, dtype=torch.float64).softmax(-1)
    reward = torch.tensor([0.0, 1.0, -3.3, 25.0, -25.0, 2.0], dtype=torch.float64)  # incl. clamped ones
    discount = torch.tensor([0.99, 0.9, 0.5, 0.99, 0.99, 1.0], dtype=torch.float64)
    terminated = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    projected = project_distribution(probs, reward, discount, terminated, support)
    expected = _loop_projection(probs.tolist(), reward.tolist(), discount.tolist(), terminated.tolist(),
                                support.tolist()).double()
    torch.testing.assert_close(projected, expected)
    torch.testing.assert_close(projected.sum(-1), torch.ones(6, dtype=torch.float64))
    assert projected[5, 6] == pytest.approx(1.0)  # terminal: all mass on the atom nearest r = 2


def test_c51_projection_keeps_v_max_on_the_support_where_float32_rounds_it_past_the_last_atom():
    """With 100 atoms on [0, 100], (v_max - v_min) / delta is 99.0000076 in float32: the mass at
    v_max must land on the last atom, not on the next row's first (nor past the target's end)."""
    support = torch.linspace(0.0, 100.0, 100)
    probs = torch.full((2, 100), 0.01)
    reward = torch.tensor([120.0, 120.0])  # beyond v_max on both rows, the last one included
    projected = project_distribution(probs, reward, torch.ones(2), torch.ones(2), support)
    expected = torch.zeros(2, 100)
    expected[:, -1] = 1.0
    torch.testing.assert_close(projected, expected)


def test_c51_projection_treats_leading_dimensions_as_batch():
    generator = torch.Generator().manual_seed(1)
    support = torch.linspace(0.0, 20.0, 21)
    probs = torch.rand(2, 3, 21, generator=generator).softmax(-1)
    reward, discount = torch.randn(2, 3, generator=generator) * 5, torch.rand(2, 3, generator=generator)
    terminated = (torch.rand(2, 3, generator=generator) < 0.3).float()
    projected = project_distribution(probs, reward, discount, terminated, support)
    flat = project_distribution(probs.flatten(0, 1), reward.flatten(), discount.flatten(), terminated.flatten(), support)
    assert projected.shape == (2, 3, 21) and torch.equal(projected.flatten(0, 1), flat)


def test_noisy_layer_noise_statistics():
    torch.manual_seed(0)
    layer = NoisyLinear(3, 2, sigma0=0.5)
    x = torch.tensor([[1.0, -2.0, 0.5]])
    samples = []
    for _ in range(20_000):
        layer.reset_noise()
        samples.append(layer(x))
    samples = torch.cat(samples).detach()
    mean_output = layer(x, noise=False).detach()[0]
    torch.testing.assert_close(samples.mean(0), mean_output, atol=0.03, rtol=0)
    # y_i = mu + sum_j sigma_ij f(e_i) f(e_j) x_j + sigma_b f(e_i); E[f(e)^2] = E|e| = sqrt(2/pi)
    sigma = 0.5 / math.sqrt(3)
    e2 = math.sqrt(2 / math.pi)
    # Var y_i = E[f(e_i)^2] E[(sum_j sigma f(e_j) x_j + sigma_b)^2]; cross terms vanish as E f(e) = 0
    expected_var = sigma ** 2 * e2 * (sum(v * v for v in x[0].tolist()) * e2 + 1.0)
    torch.testing.assert_close(samples.var(0), torch.full((2,), expected_var), rtol=0.05, atol=0)
    assert layer(x, noise=False).shape == (1, 2)


def _sarsa_batch(next_action):
    b = batch()
    return Batch(**{**b.__dict__, "next_action": torch.tensor(next_action)})


def test_sarsa_target_uses_the_action_taken_next_and_expected_sarsa_the_policy():
    agent = make_agent(target="sarsa")
    agent.step, eps = 10**9, agent.config.end_e  # epsilon has decayed to end_e
    b = _sarsa_batch([1, 0, 1])
    torch.testing.assert_close(agent.td_target(b), torch.tensor([1.0 + 0.9 * TARGET[1][1],
                                                               -1.0 + 0.81 * TARGET[2][0], 0.5]))
    # -1 marks a window that ended by truncation: the policy's expectation stands in
    b = _sarsa_batch([-1, 0, 1])
    expected_first = 1.0 + 0.9 * ((1 - eps) * max(TARGET[1]) + eps * sum(TARGET[1]) / 2)
    torch.testing.assert_close(agent.td_target(b)[0], torch.tensor(expected_first))
    agent = make_agent(target="expected_sarsa")
    agent.step = 10**9
    expected = [1.0 + 0.9 * ((1 - eps) * max(TARGET[1]) + eps * sum(TARGET[1]) / 2),
                -1.0 + 0.81 * ((1 - eps) * max(TARGET[2]) + eps * sum(TARGET[2]) / 2), 0.5]
    torch.testing.assert_close(agent.td_target(b), torch.tensor(expected))


def test_every_flag_combination_runs_one_update_with_finite_loss():
    flags = dict(double=True, dueling=True, noisy=True, prioritized=True, distributional=True, n_step=3,
                 target="expected_sarsa", v_min=0.0, v_max=100.0, atoms=11)
    agent = DQN.from_env("CartPole-v1", steps=400, learning_starts=100, train_frequency=4, batch_size=16,
                         buffer_size=1000, eval_every=0, eval_episodes=1, **flags)
    before = [p.clone() for p in agent.q.parameters()]
    from agents.runner import Runner
    import tempfile

    with tempfile.TemporaryDirectory() as run_dir:
        summary = Runner(agent, run_dir=run_dir, progress=False).run()
    assert math.isfinite(summary["eval_return_mean"])
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.q.parameters()))
    assert agent.epsilon(0) == 0.0  # NoisyNet explores instead of epsilon


def test_rainbow_preset_turns_every_flag_on():
    agent = DQN.from_env("CartPole-v1", preset="rainbow")
    cfg = agent.config
    assert (cfg.double, cfg.dueling, cfg.noisy, cfg.prioritized, cfg.distributional, cfg.n_step) == \
        (True, True, True, True, True, 3)
    assert (cfg.v_min, cfg.v_max) == (0.0, 100.0)
    assert DQN.from_env("PongNoFrameskip-v4", preset="rainbow").config.learning_rate == 6.25e-5
