"""The option-cost bench cases time the same agent and settings with and without one option."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from bench_cases import option_cost_cases  # noqa: E402


def test_each_case_times_the_settings_without_then_with_its_option(monkeypatch):
    calls = []

    def fake_sps(agent_cls, env_id, steps, settings):
        calls.append((agent_cls.name, env_id, steps, settings))
        return 100.0 if len(calls) % 2 else 80.0

    monkeypatch.setattr(option_cost_cases, "reprl_sps", fake_sps)
    rows = list(option_cost_cases.run(list(option_cost_cases.CASES)))
    assert [row["case"] for row in rows] == ["rainbow_pong", "dqn_curl_pong", "ppo_dbc_pong"]
    assert [row["target"] for row in rows] == [0.70, 0.60, 0.60]
    assert all(row["base_sps"] == 100.0 and row["sps"] == 80.0 and row["ratio"] == 0.8 for row in rows)
    for (name, env_id, steps, base), (name_on, env_on, steps_on, with_option), row in zip(calls[::2], calls[1::2], rows):
        assert (name, env_id, steps) == (name_on, env_on, steps_on) == (name, "PongNoFrameskip-v4", row["steps"])
        assert with_option == {**base, **row["option"]} and with_option != base
    assert calls[0][3]["learning_starts"] == 1_000 and calls[0][2] == 6_000  # DQN trains on most timed steps
    assert calls[5][3]["aux"] == "dbc" and "aux" not in calls[4][3]
