"""The ``ppo_torch_warm`` bench case: warm eager and compiled PPO rollouts timed in alternation."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from bench_cases import warm_rollout_cases  # noqa: E402
from bench_cases.ppo_torch_cases import PPO_TORCH_CARTPOLE  # noqa: E402


def test_a_row_gives_both_sides_medians_and_their_ratio(monkeypatch):
    monkeypatch.setattr(warm_rollout_cases, "QUICK_ROUNDS", 3)
    seconds = iter([(0.010, 0.030), (0.004, 0.012), (0.030, 0.050), (0.002, 0.006), (0.020, 0.040), (0.008, 0.010)])
    built, rollouts = [], []

    class FakeRollouts:
        def __init__(self, num_envs, device, compile):
            built.append((num_envs, device.type, compile))
            self.compile = compile

        def rollout(self):
            rollouts.append(self.compile)
            return next(seconds) if len(rollouts) > 2 else (1.0, 1.0)  # (the warm-up's, not timed)

    monkeypatch.setattr(warm_rollout_cases, "WarmRollouts", FakeRollouts)
    [row] = warm_rollout_cases.run(quick=True)
    assert built == [(64, "cpu", False), (64, "cpu", True)]
    assert rollouts == [False, True] + [False, True] * 3  # a warm-up each, then alternation
    steps = 64 * PPO_TORCH_CARTPOLE["num_steps"]
    assert row == {"case": "ppo_torch_warm", "num_envs": 64, "device": "cpu", "rounds": 3,
                   "eager_rollout_ms": 20.0, "eager_update_ms": 40.0, "eager_sps": round(steps / 0.060, 1),
                   "compiled_rollout_ms": 4.0, "compiled_update_ms": 10.0, "compiled_sps": round(steps / 0.014, 1),
                   "ratio": round((steps / 0.014) / (steps / 0.060), 3)}


def test_warm_rollouts_step_and_train_a_real_agent():
    side = warm_rollout_cases.WarmRollouts(16, warm_rollout_cases.torch.device("cpu"), compile=False)
    weights = [p.detach().clone() for p in side.agent.parameters()]
    stepped, updated = side.rollout()
    assert stepped > 0 and updated > 0
    assert side.step == 16 * PPO_TORCH_CARTPOLE["num_steps"]
    assert any(not p.equal(w) for p, w in zip(side.agent.parameters(), weights))  # the update trained it
