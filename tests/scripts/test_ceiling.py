"""The eager network-plus-env ceiling of the learning cases: which passes each case makes, and
the arithmetic that turns their timings into steps/s."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from bench_cases import ceiling, learning_cases, pg_cases  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402


def shape(plan):
    return [(p.batch, p.train, p.per_step) for p in plan.passes]


def test_plans_follow_the_cases_hyperparameters():
    ppo = ceiling.plan("ppo_cartpole")  # 8 envs x 32 steps, one minibatch, 20 epochs, two threads
    assert (ppo.env_id, ppo.num_envs, ppo.threads, ppo.warmup) == ("CartPole-v1", 8, 2, 0)
    assert shape(ppo) == [(8, False, 1 / 8), (256, True, 20 / 256)]
    assert shape(ceiling.plan("a2c_cartpole")) == [(8, False, 1 / 8), (40, True, 1 / 40)]
    pong = ceiling.plan("ppo_pong")  # 8 envs x 128 steps, 4 minibatches, 4 epochs, two threads
    assert (pong.threads, shape(pong)) == (2, [(8, False, 1 / 8), (256, True, 16 / 1024)])
    dqn = ceiling.plan("dqn_cartpole")  # 128 gradient steps every 256 steps, each with a target pass
    assert (dqn.warmup, shape(dqn)) == (1_000, [(1, False, 1.0), (64, True, 0.5), (64, False, 0.5)])
    assert shape(ceiling.plan("dqn_pong")) == [(1, False, 1.0), (32, True, 0.25), (32, False, 0.25)]
    sac = ceiling.plan("sac_pendulum")
    assert (sac.warmup, shape(sac)) == (100, [(1, False, 1.0), (256, True, 1.0), (256, False, 1.0),
                                              (256, False, 1.0), (256, True, 1.0)])


def test_ceiling_adds_env_time_to_every_step_and_pass_time_after_the_warmup(monkeypatch):
    monkeypatch.setattr(ceiling, "raw_env_sps", lambda env_id, num_envs, steps: 2_000.0)  # 0.5 ms a step
    seconds = {(1, False): 1e-4, (64, True): 2e-3, (64, False): 4e-4}
    monkeypatch.setattr(ceiling, "pass_seconds", lambda p, repeats: seconds[(p.batch, p.train)])
    # 3,000 steps: all pay 0.5 ms of env time; the 2,000 after the 1,000 warm-up steps also pay
    # one acting pass and half a training and a target pass each.
    per_learning_step = 1e-4 + 0.5 * 2e-3 + 0.5 * 4e-4
    expected = 3_000 / (3_000 * 0.5e-3 + 2_000 * per_learning_step)
    row = ceiling.ceiling("dqn_cartpole", measured_sps=500.0, steps=3_000)
    assert row["ceiling_sps"] == pytest.approx(expected, abs=0.05)
    assert row["fraction_of_ceiling"] == pytest.approx(500.0 / expected, abs=5e-4)
    assert ceiling.ceiling_sps(ceiling.plan("dqn_cartpole"), steps=600) == pytest.approx(2_000.0)  # all warm-up


@pytest.mark.parametrize("case", ["ppo_cartpole", "dqn_cartpole", "a2c_cartpole", "sac_pendulum"])
def test_each_pass_runs_its_network_on_its_batch(case):
    for p in ceiling.plan(case).passes:
        out = p.network()(p.inputs(p.batch))
        assert out.shape[0] == p.batch and out.dtype == torch.float32
        assert ceiling.pass_seconds(p, repeats=1) > 0


def test_sac_actor_pass_trains_the_actor_only():
    torch.manual_seed(0)
    net = ceiling.ActorThroughCritics(ceiling.mlp(3, 8, 2, torch.nn.ReLU),
                                      ceiling.TwoMLPs(4, 8, (1, 1), torch.nn.ReLU), action_dim=1)
    net(torch.randn(16, 3)).square().mean().backward()
    assert all(q.grad is not None and q.grad.abs().sum() > 0 for q in net.actor.parameters())
    assert all(q.grad is None for q in net.critics.parameters())


def test_every_learning_row_carries_its_ceiling(monkeypatch):
    monkeypatch.setattr(learning_cases, "reprl_sps", lambda agent_cls, env_id, steps, hp: 300.0)
    monkeypatch.setattr(pg_cases, "sb3_sps", lambda *args: 100.0)
    asked = []

    def fake_ceiling(case, sps, steps):
        asked.append((case, sps, steps))
        return {"ceiling_sps": 600.0, "fraction_of_ceiling": sps / 600.0}

    names = ["ppo_cartpole", "dqn_cartpole"]
    rows = list(learning_cases.run(names, ceiling=fake_ceiling, sb3=lambda *args: 100.0))
    rows += list(pg_cases.run(names=["a2c_cartpole"], ceiling=fake_ceiling))
    assert [r["case"] for r in rows] == names + ["a2c_cartpole"]
    assert [(c, s) for c, s, _ in asked] == [(n, 300.0) for n in names + ["a2c_cartpole"]]
    assert all(r["ceiling_sps"] == 600.0 and r["fraction_of_ceiling"] == 0.5 for r in rows)


def test_repeats_alternate_the_sides_and_report_medians(monkeypatch):
    calls = []

    def fake_reprl(agent_cls, env_id, steps, hp):
        calls.append("reprl")
        return [300.0, 100.0, 240.0][calls.count("reprl") - 1]

    def fake_sb3(*args):
        calls.append("sb3")
        return [100.0, 100.0, 60.0][calls.count("sb3") - 1]

    monkeypatch.setattr(learning_cases, "reprl_sps", fake_reprl)
    (row,) = learning_cases.run(["dqn_cartpole"], sb3=fake_sb3, repeats=3)
    assert calls == ["reprl", "sb3"] * 3
    assert row["pair_ratios"] == [3.0, 1.0, 4.0] and row["repeats"] == 3
    assert (row["reprl_sps"], row["sb3_sps"], row["ratio"]) == (240.0, 100.0, 3.0)
