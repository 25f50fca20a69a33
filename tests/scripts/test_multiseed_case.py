"""The ``multiseed``, ``multiseed_trpo``, ``multiseed_dqn``, ``multiseed_rainbow`` and ``multiseed_sac``
bench cases: rows for K = 1 and 2 in quick mode, ratio = together / one seed."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import bench  # noqa: E402


@pytest.mark.parametrize(("case", "agent", "env", "steps"), [("multiseed", "ppo", "CartPole-v1", 512),
                                                             ("multiseed_trpo", "trpo", "CartPole-v1", 1_024),
                                                             ("multiseed_dqn", "dqn", "CartPole-v1", 1_536),
                                                             ("multiseed_rainbow", "dqn", "CartPole-v1", 1_536),
                                                             ("multiseed_sac", "sac", "Pendulum-v1", 300)])
def test_quick_multiseed_rows(capsys, case, agent, env, steps):
    assert bench.main(["--cases", case, "--quick"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["seeds"] for row in rows] == [1, 2]
    for row in rows:
        assert row["case"] == case and row["agent"] == agent and row["env"] == env
        assert row["steps_per_seed"] == steps
        assert row.get("preset") == ("rainbow" if case == "multiseed_rainbow" else None)
        assert row["sps"] > 0 and row["ratio"] == pytest.approx(row["sps"] / row["single_seed_sps"], abs=2e-3)


def test_repeated_multiseed_rows_give_the_median_of_their_pairs(capsys):
    assert bench.main(["--cases", "multiseed", "--quick", "--repeats", "3"]) == 0
    for row in (json.loads(line) for line in capsys.readouterr().out.splitlines()):
        assert row["repeats"] == 3 and len(row["pair_ratios"]) == 3
        assert row["ratio"] == pytest.approx(sorted(row["pair_ratios"])[1], abs=2e-3)
