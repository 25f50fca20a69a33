"""The ``ppo_torch_cartpole`` bench case: what each side is asked to run, and the rows it prints."""
import importlib.util
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import bench  # noqa: E402
from bench_cases import learning_cases, ppo_torch_cases  # noqa: E402

ROW_KEYS = ["case", "num_envs", "steps", "torch_threads", "reprl_sps", "sb3_sps", "ratio"]


def test_rows_time_both_sides_on_the_same_settings(monkeypatch):
    calls = []

    def fake_reprl(agent_cls, env_id, steps, hp):
        calls.append(("reprl", agent_cls.name, env_id, steps, hp))
        return 10.0 * hp["num_envs"]

    def fake_sb3(kind, env_id, steps, hp):
        calls.append(("sb3", kind, env_id, steps, hp))
        return 4.0 * hp["num_envs"]

    monkeypatch.setattr(learning_cases, "reprl_sps", fake_reprl)
    monkeypatch.setattr(learning_cases, "sb3_sps", fake_sb3)
    rows = list(ppo_torch_cases.run())

    sizes = [8, 64, 256, 1024, 4096]
    rollouts = {8: 128, 64: 96, 256: 64, 1024: 32, 4096: 8}
    assert rows == [{"case": "ppo_torch_cartpole", "num_envs": n, "steps": rollouts[n] * n * 16, "torch_threads": 1,
                     "reprl_sps": 10.0 * n, "sb3_sps": 4.0 * n, "ratio": 2.5} for n in sizes]
    expected_hp = [{**ppo_torch_cases.PPO_TORCH_CARTPOLE, "num_envs": n} for n in sizes]
    assert [c[:4] for c in calls[0::2]] == [("reprl", "ppo", "CartPole-v1", row["steps"]) for row in rows]
    assert [c[:4] for c in calls[1::2]] == [("sb3", "ppo", "CartPole-v1", row["steps"]) for row in rows]
    assert [c[4] for c in calls[0::2]] == expected_hp
    assert [c[4] for c in calls[1::2]] == expected_hp
    assert all(hp["backend"] == "torch" for hp in expected_hp)
    assert ppo_torch_cases.PPO_TORCH_CARTPOLE["num_envs"] == 1024  # the tuned dict is not overwritten


def test_budget_is_whole_rollouts():
    assert ppo_torch_cases.budget(1024, 24) == 24 * 1024 * 16
    assert ppo_torch_cases.budget(8, 3, num_steps=5) == 120


def test_quick_bench_prints_one_row_per_env_count(capsys):
    assert bench.main(["--cases", "ppo_torch_cartpole", "--quick"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["num_envs"] for row in rows] == [8, 64]
    has_sb3 = importlib.util.find_spec("stable_baselines3") is not None
    for row in rows:
        assert list(row) == ROW_KEYS
        assert row["case"] == "ppo_torch_cartpole" and row["torch_threads"] == 1
        assert row["steps"] == 2 * row["num_envs"] * 16
        assert row["reprl_sps"] > 0
        if has_sb3:
            assert row["sb3_sps"] > 0
            assert abs(row["ratio"] - row["reprl_sps"] / row["sb3_sps"]) < 1e-3 * row["ratio"] + 5e-4
        else:
            assert row["sb3_sps"] is None and row["ratio"] is None
