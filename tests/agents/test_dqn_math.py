"""DQN's targets and loss against hand computation on fixed Q tables."""
from dataclasses import replace

import pytest
import torch

from agents import DQN
from dqn_tables import ONLINE, TARGET, batch, make_agent


def test_plain_target_takes_the_target_networks_max():
    expected = [1.0 + 0.9 * max(TARGET[1]), -1.0 + 0.81 * max(TARGET[2]), 0.5]
    torch.testing.assert_close(make_agent().td_target(batch()), torch.tensor(expected))


def test_double_target_lets_the_online_network_choose():
    # online argmax at s'=1 is action 0 (2.0 > 0.5); at s'=2 action 1 (3.0 > 0.0)
    expected = [1.0 + 0.9 * TARGET[1][0], -1.0 + 0.81 * TARGET[2][1], 0.5]
    torch.testing.assert_close(make_agent(double=True).td_target(batch()), torch.tensor(expected))


def test_weighted_huber_loss_and_gradient_step():
    agent = make_agent(loss="huber", max_grad_norm=0.0)
    b = batch()
    target = agent.td_target(b)
    q = torch.tensor([ONLINE[0][1], ONLINE[1][0], ONLINE[2][1]])
    diff = q - target
    huber = torch.where(diff.abs() < 1, 0.5 * diff ** 2, diff.abs() - 0.5)
    metrics = agent.update(b)
    torch.testing.assert_close(metrics["losses/td_loss"], (b.weights * huber).mean())
    grad = b.weights * diff.clamp(-1, 1) / 3  # d loss / d q, then one SGD step of 0.1
    table = torch.tensor(ONLINE)
    table[[0, 1, 2], [1, 0, 1]] -= 0.1 * grad
    torch.testing.assert_close(agent.q.table.detach(), table)


def test_the_loss_takes_a_precomputed_target():
    agent = make_agent(loss="huber")
    q_taken = torch.tensor([ONLINE[0][1], ONLINE[1][0], ONLINE[2][1]])
    loss, priority, _ = agent.loss(replace(batch(), target=q_taken), agent.current_epsilon())
    assert float(loss.detach()) == 0.0 and torch.equal(priority, torch.zeros(3))


@pytest.mark.parametrize("settings, shared", [({}, True), ({"target": "expected_sarsa"}, True),
                                              ({"distributional": True}, True), ({"double": True}, False),
                                              ({"noisy": True}, False), ({"gradient_steps": 1}, False)])
def test_a_rounds_targets_come_from_one_target_pass_where_only_the_target_network_sets_them(settings, shared):
    """The target network changes only between rounds: its targets for a round's gradient steps
    are those each step would compute (double DQN's and NoisyNet's change within the round)."""
    agent = DQN.from_env("CartPole-v1", batch_size=8, **{"gradient_steps": 4, **settings})
    agent.setup_training(num_envs=2)
    generator = torch.Generator().manual_seed(0)
    for _ in range(30):
        agent.buffer.add(torch.randn(2, 4, generator=generator), torch.randint(0, 2, (2,), generator=generator),
                         torch.ones(2), torch.randn(2, 4, generator=generator), torch.rand(2, generator=generator) < 0.1,
                         torch.zeros(2, dtype=torch.bool))
    passes = []
    agent.q_target.register_forward_hook(lambda module, args, out: passes.append(len(args[0])))
    batches = list(agent.training_batches())
    assert len(batches) == agent.config.gradient_steps
    if not shared:
        assert all(b.target is None for b in batches) and passes == []
        return
    assert passes == [8 * 4]
    for b in batches:
        torch.testing.assert_close(b.target, agent.td_target(b), rtol=0, atol=1e-6)


def test_epsilon_decays_linearly_then_stays():
    agent = DQN.from_env("CartPole-v1", steps=1000, start_e=1.0, end_e=0.1, exploration_fraction=0.5)
    assert [round(agent.epsilon(s), 6) for s in (0, 250, 500, 900)] == [1.0, 0.55, 0.1, 0.1]
    rising = DQN.from_env("CartPole-v1", steps=1000, start_e=0.0, end_e=0.1, exploration_fraction=0.1)
    assert [rising.epsilon(s) for s in (0, 100, 500, 1000)] == [0.0, 0.1, 0.1, 0.1]  # capped at end_e either way


def test_polyak_target_update_moves_by_tau():
    agent = DQN.from_env("CartPole-v1", tau=0.25)
    before = [p.clone() for p in agent.q_target.parameters()]
    with torch.no_grad():
        for p in agent.q.parameters():
            p.add_(1.0)
    agent.update_target()
    for old, new, online in zip(before, agent.q_target.parameters(), agent.q.parameters()):
        torch.testing.assert_close(new, old + 0.25 * (online - old))


def test_hard_target_update_copies_parameters_and_buffers():
    agent = DQN.from_env("CartPole-v1", tau=1.0, noisy=True, distributional=True)
    for sync in range(2):  # the second sync copies the values of its time (the tensors are listed once)
        with torch.no_grad():
            for p in agent.q.parameters():
                p.add_(1.0 + sync)
        agent.q.head.reset_noise()  # NoisyNet's noise lives in buffers
        agent.update_target()
        online, target = agent.q.state_dict(), agent.q_target.state_dict()
        assert online.keys() == target.keys()
        for name in online:
            assert torch.equal(online[name], target[name]), name


@pytest.mark.parametrize("n_step", [1, 3])
def test_learning_from_the_first_step_waits_for_the_first_sampleable_transitions(n_step, tmp_path):
    """learning_starts=0 with train_frequency=1 asks for a round after the very first step, when
    no n-step window is complete yet: training starts once one surely is, instead of failing."""
    agent = DQN.from_env("CartPole-v1", steps=64, num_envs=2, learning_starts=0, train_frequency=1, n_step=n_step,
                         batch_size=8, eval_every=0, eval_episodes=1)
    initial = [p.clone() for p in agent.q.parameters()]
    updates = []
    update = agent.update
    agent.update = lambda batch: updates.append(agent.buffer.added) or update(batch)
    agent.learn(run_dir=tmp_path, progress=False)
    assert updates[0] == 2 * (n_step + 1)  # the first add after which n + 1 steps per env are stored
    assert not all(torch.equal(a, b) for a, b in zip(initial, agent.q.parameters()))
