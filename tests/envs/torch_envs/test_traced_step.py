"""``--compile`` on the CPU steps a torch-native env's arithmetic as one inductor graph
(``TorchClassicControlEnv.trace_step`` through ``agents.compilation.compile_env_step``): it must
step as gymnasium does and as the eager env does, resets, time limits and statistics included."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.compilation import compile_env_step
from agents.traced_graphs import TracedGraphs
from envs import make_env
from envs.torch_envs import TORCH_ENVS, make_torch_env
from wrappers.normalize import NormalizeObservation

from test_torch_env_contract import rollout
from test_torch_env_exactness import ROLLOUT_CASES, make_pair, step_and_compare


def traced(env):
    compile_env_step(env, "auto")
    assert isinstance(env._advance_step, TracedGraphs)
    return env


@pytest.mark.parametrize("case", ROLLOUT_CASES, ids=lambda case: case.name)
def test_traced_step_from_random_states_matches_gymnasium(case) -> None:
    num_envs = 256
    rng = np.random.default_rng(5)
    env, reference = make_pair(case, num_envs, torch.float32)
    traced(env).reset()
    snapshot = env.state_dict()
    snapshot["state"] = torch.as_tensor(case.random_state(rng, num_envs), dtype=torch.float32)
    elapsed = rng.integers(0, env.max_episode_steps, size=num_envs)
    elapsed[rng.random(num_envs) < 0.25] = env.max_episode_steps - 1
    snapshot["elapsed_steps"] = torch.as_tensor(elapsed)
    env.load_state_dict(snapshot)
    totals = {"terminated": 0, "truncated": 0, "flipped": 0}
    for _ in range(3):  # the second and third steps start from the state the graph wrote back
        counts = step_and_compare(env, reference, case, case.random_action(rng, num_envs))
        totals = {key: totals[key] + counts[key] for key in totals}
    assert totals["truncated"] > 25 and totals["flipped"] <= 2
    if case.env_id != "Pendulum-v1":
        assert totals["terminated"] > 0


@pytest.mark.parametrize("env_id", list(TORCH_ENVS))
def test_traced_rollout_equals_the_eager_one(env_id: str) -> None:
    """120 steps of 64 envs with a 40-step limit: every env resets at least twice. In float64
    the graph's arithmetic matches the eager ops' to round-off (bit for bit here but for
    Pendulum's), so flags and counts must agree exactly."""
    eager = make_torch_env(env_id, 64, seed=3, dtype=torch.float64, max_episode_steps=40)
    compiled = traced(make_torch_env(env_id, 64, seed=3, dtype=torch.float64, max_episode_steps=40))
    eager.reset(), compiled.reset()
    expected, got = rollout(eager, 120), rollout(compiled, 120)
    for (*outputs, info), (*traced_outputs, traced_info) in zip(expected, got, strict=True):
        for name in ("episode_done", "episode_length"):
            assert torch.equal(info[name], traced_info[name])
        for a, b in zip([*outputs, info["final_obs"], info["episode_return"]],
                        [*traced_outputs, traced_info["final_obs"], traced_info["episode_return"]]):
            assert a.dtype == b.dtype
            if a.dtype == torch.bool:
                assert torch.equal(a, b)
            else:
                torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    assert int(sum(info["episode_done"].sum() for *_, info in expected)) >= 2 * 64
    for key, value in eager.state_dict().items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(value, compiled.state_dict()[key], rtol=1e-9, atol=1e-9)


def test_wrapped_torch_envs_are_traced_and_others_left_as_they_are() -> None:
    normalized = NormalizeObservation(make_torch_env("CartPole-v1", 8))
    compile_env_step(normalized, "auto")
    assert isinstance(normalized.env._advance_step, TracedGraphs)
    gymnasium_env = make_env("CartPole-v1", 2)
    compile_env_step(gymnasium_env, "auto")  # nothing to trace: steps as before
    gymnasium_env.reset()
    obs, *_ = gymnasium_env.step(torch.zeros(2, dtype=torch.int64))
    assert obs.shape == (2, 4)
