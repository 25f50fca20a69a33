"""The ``ppo_torch_cartpole`` bench case: what each side is asked to run, and the rows it prints."""
import importlib.util
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import bench  # noqa: E402
from bench_cases import learning_cases, ppo_torch_cases  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

ROW_KEYS = ["case", "num_envs", "steps", "device", "torch_threads", "reprl_sps", "sb3_sps", "ratio", "compile",
            "other_threads_before"]


def fake_sides(monkeypatch) -> list[tuple]:
    """Replaces both timed sides with fakes that record their calls (returned) and report
    10 and 4 steps/s per env."""
    calls = []

    def fake_reprl(agent_cls, env_id, steps, hp):
        calls.append(("reprl", agent_cls.name, env_id, steps, hp))
        return 10.0 * hp["num_envs"]

    def fake_sb3(kind, env_id, steps, hp):
        calls.append(("sb3", kind, env_id, steps, hp))
        return 4.0 * hp["num_envs"]

    monkeypatch.setattr(learning_cases, "reprl_sps", fake_reprl)
    monkeypatch.setattr(learning_cases, "sb3_sps", fake_sb3)
    return calls


def test_rows_time_both_sides_on_the_same_settings(monkeypatch):
    calls = fake_sides(monkeypatch)
    rows = list(ppo_torch_cases.run())

    sizes = [8, 64, 256, 1024, 4096]
    rollouts = {8: 128, 64: 96, 256: 64, 1024: 128, 4096: 16}  # at 1,024 envs the preset's 2,097,152-step run
    assert rows == [{"case": "ppo_torch_cartpole", "num_envs": n, "steps": rollouts[n] * n * 16, "device": "cpu",
                     "torch_threads": os.cpu_count(), "reprl_sps": 10.0 * n, "sb3_sps": 4.0 * n, "ratio": 2.5}
                    for n in sizes]  # the preset's torch default threads, pinned for both sides
    expected_hp = [{**ppo_torch_cases.PPO_TORCH_CARTPOLE, "num_envs": n, "device": "cpu"} for n in sizes]
    assert [c[:4] for c in calls[0::2]] == [("reprl", "ppo", "CartPole-v1", row["steps"]) for row in rows]
    assert [c[:4] for c in calls[1::2]] == [("sb3", "ppo", "CartPole-v1", row["steps"]) for row in rows]
    assert [c[4] for c in calls[0::2]] == expected_hp
    assert [c[4] for c in calls[1::2]] == expected_hp
    assert all(hp["backend"] == "torch" for hp in expected_hp)
    assert ppo_torch_cases.PPO_TORCH_CARTPOLE["num_envs"] == 1024  # the tuned dict is not overwritten


def test_on_a_gpu_reprl_goes_on_alone_past_sb3s_largest_env_count(monkeypatch):
    calls = fake_sides(monkeypatch)
    rows = list(ppo_torch_cases.run(device=torch.device("cuda")))  # the fakes never touch the device

    assert [row["num_envs"] for row in rows] == [8, 64, 256, 1024, 4096, 16384, 65536]
    assert [row["steps"] for row in rows[-2:]] == [16 * 16384 * 16, 8 * 65536 * 16]
    assert all(row["device"] == "cuda" for row in rows)
    assert [row["ratio"] for row in rows] == [2.5] * 5 + [None, None]
    assert [c[0] for c in calls] == ["reprl", "sb3"] * 5 + ["reprl", "reprl"]
    assert all(c[4]["device"] == "cuda" for c in calls)


@pytest.mark.parametrize("argv,message", [
    (["--device", "cuda:0", "--cases", "per_sample"], "per_sample run on the CPU only"),
    (["--device", "tpu"], "--device must be cpu or cuda"),
    (["--device", "meta"], "--device must be cpu or cuda"),
])
def test_bench_device_errors(argv, message, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(SystemExit) as exit_info:
        bench.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


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
        assert row["case"] == "ppo_torch_cartpole" and row["torch_threads"] == os.cpu_count()
        assert row["steps"] == 2 * row["num_envs"] * 16
        assert row["reprl_sps"] > 0
        if has_sb3:
            assert row["sb3_sps"] > 0
            # The speeds are rounded to 0.1 step/s and the ratio to 0.001: the ratio of the rounded
            # speeds is off by at most their relative rounding errors (large at --quick's few steps/s).
            rounding = row["ratio"] * 0.05 * (1 / row["reprl_sps"] + 1 / row["sb3_sps"]) + 5e-4
            assert abs(row["ratio"] - row["reprl_sps"] / row["sb3_sps"]) <= 1.01 * rounding
        else:
            assert row["sb3_sps"] is None and row["ratio"] is None


def test_compile_trains_reprls_side_compiled_and_reports_its_compile_time(monkeypatch):
    calls = fake_sides(monkeypatch)
    rows = list(ppo_torch_cases.run(compile=True))

    assert all(c[4]["compile"] for c in calls[0::2]) and not any("compile" in c[4] for c in calls[1::2])
    assert all(row["compile_s"] == 0.0 and row["reprl_steady_sps"] == row["reprl_sps"] for row in rows)


def test_repeats_alternate_the_sides_and_give_the_median_ratios_with_and_without_compiling(monkeypatch):
    """``--repeats 3``: reprl and SB3 alternate three times per env count; the row gives the
    median speeds, every pair's ratio, their median, and the median of the pairs' ratios once
    reprl's compiling (here half of each of its runs) is taken out."""
    calls, compiled = [], [0.0]
    speeds, sb3_speeds = iter([10.0, 20.0, 30.0] * 5), iter([4.0, 4.0, 8.0] * 5)

    def fake_reprl(agent_cls, env_id, steps, hp):
        calls.append("reprl")
        speed = next(speeds) * hp["num_envs"]
        compiled[0] += 0.5 * steps / speed
        return speed

    def fake_sb3(kind, env_id, steps, hp):
        calls.append("sb3")
        return next(sb3_speeds) * hp["num_envs"]

    monkeypatch.setattr(learning_cases, "reprl_sps", fake_reprl)
    monkeypatch.setattr(learning_cases, "sb3_sps", fake_sb3)
    monkeypatch.setattr(learning_cases, "compile_seconds", lambda: compiled[0])
    rows = list(ppo_torch_cases.run(compile=True, repeats=3))

    assert calls == ["reprl", "sb3"] * 3 * 5
    for row in rows:
        n = row["num_envs"]
        assert (row["reprl_sps"], row["sb3_sps"]) == (20.0 * n, 4.0 * n)
        assert row["repeats"] == 3 and row["pair_ratios"] == [2.5, 5.0, 3.75] and row["ratio"] == 3.75
        assert row["reprl_steady_sps"] == 40.0 * n and row["steady_ratio"] == 7.5
