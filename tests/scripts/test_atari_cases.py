"""The Atari bench cases: ``atari_rollout`` alternates raw stepping and reprl's rollout over the same
actions; ``atari_step_gap`` alternates raw stepping with busy gaps of each length between steps."""
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from bench_cases import atari_cases  # noqa: E402


def test_sides_alternate_over_the_same_action_chunks_and_the_row_gives_medians(monkeypatch):
    timed = []
    speeds = iter([100.0, 90.0, 120.0, 60.0, 80.0, 80.0, 110.0, 99.0, 90.0, 45.0])

    def fake_timing(step, actions):
        step(actions[0])
        timed.append((step, actions.clone()))
        return next(speeds)

    monkeypatch.setattr(atari_cases, "steps_per_second", fake_timing)
    row, = atari_cases.run(quick=True)
    raw, ours = timed[0][0], timed[1][0]
    assert raw is not ours and [step for step, _ in timed] == [raw, ours] * atari_cases.ROUNDS
    for (_, raw_chunk), (_, our_chunk) in zip(timed[::2], timed[1::2]):
        assert torch.equal(raw_chunk, our_chunk) and raw_chunk.shape[1] == 8
    assert sum(len(chunk) for _, chunk in timed[::2]) == row["steps"] == 200
    assert row["pair_ratios"] == [0.9, 0.5, 1.0, 0.9, 0.5]
    assert row["ratio"] == 0.9 and row["raw_env_sps"] == 100.0 and row["reprl_sps"] == 80.0


def test_quick_rollout_steps_pong_for_real():
    row, = atari_cases.run(quick=True)
    assert row["case"] == "atari_rollout" and row["num_envs"] == 8
    assert row["reprl_sps"] > 0 and row["raw_env_sps"] > 0
    assert len(row["pair_ratios"]) == atari_cases.ROUNDS
    assert abs(row["ratio"] - statistics.median(row["pair_ratios"])) <= 0.001  # (the pairs' ratios are rounded)
    assert 0 < row["between_steps_us"]["raw"] < row["between_steps_us"]["reprl"]


def test_time_between_steps_records_the_callers_work_between_calls():
    class Env:
        def step(self, actions):
            atari_cases.busy_for(20_000)  # (none of which is between steps)
            return actions

    env = Env()
    gaps = atari_cases.time_between_steps(env)
    assert env.step(1) == 1 and gaps == []
    for work_us in (500, 3_000):
        atari_cases.busy_for(work_us)
        env.step(2)
    assert len(gaps) == 2 and 500e3 <= gaps[0] < 20_000e3 and 3_000e3 <= gaps[1] < 20_000e3


def test_busy_for_returns_only_after_its_time():
    start = time.perf_counter()
    atari_cases.busy_for(3_000)
    assert time.perf_counter() - start >= 3e-3


def test_step_gap_rows_alternate_the_gaps_and_compare_each_with_no_gap(monkeypatch):
    gaps_seen, busy = [], []
    monkeypatch.setattr(atari_cases, "busy_for", busy.append)
    rates = iter([1000.0, 900.0, 800.0, 700.0, 600.0, 500.0, 400.0] * (atari_cases.ROUNDS - 1)
                 + [2000.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0])

    def fake_timing(step, actions):
        busy.clear()
        step(actions[0])
        gaps_seen.append(busy[0])
        return next(rates)

    monkeypatch.setattr(atari_cases, "steps_per_second", fake_timing)
    rows = list(atari_cases.run_step_gap(quick=True))
    assert gaps_seen == list(atari_cases.GAPS_US) * atari_cases.ROUNDS
    assert [row["gap_us"] for row in rows] == list(atari_cases.GAPS_US)
    assert [row["raw_env_sps"] for row in rows] == [1000.0, 900.0, 800.0, 700.0, 600.0, 500.0, 400.0]  # medians
    assert [row["ratio"] for row in rows] == [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    step_us = 1e6 * 8 / 1000.0  # 8 envs at 1,000 steps/s: 8 ms a step
    assert [row["ratio_if_gap_costs_itself"] for row in rows] == [
        round(step_us / (step_us + gap), 3) for gap in atari_cases.GAPS_US]
