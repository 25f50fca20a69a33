"""The torch envs against gymnasium itself: every step of every env, driven from the same state.

For each compared transition the gymnasium env (``gym.make`` with its ``TimeLimit``) is put in
the torch env's pre-step state and step count, stepped with the same action, and its
observation, reward, terminated, truncated and next state must match. float64 matches to
round-off; float32 to 1e-5, where a terminated flag may only differ for a next state within 1e-5
of the termination boundary (the two sides round differently there).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import pytest
import torch

from envs.torch_envs import make_torch_env

FLOAT32_TOL = 1e-5


@dataclass
class Case:
    env_id: str
    random_state: Callable[[np.random.Generator, int], np.ndarray]  # [n, state_dim] float64
    random_action: Callable[[np.random.Generator, int], np.ndarray]
    boundary_distance: Callable[[np.ndarray], float]  # gymnasium next state -> distance
    float64_tol: float = 1e-9
    kwargs: dict = field(default_factory=dict)  # for both gym.make and the torch env
    unwrapped_attrs: dict = field(default_factory=dict)  # gymnasium options not in gym.make
    torch_only_kwargs: dict = field(default_factory=dict)
    angle_dims: tuple[int, ...] = ()  # compared modulo 2 pi

    @property
    def name(self) -> str:
        options = {**self.kwargs, **self.unwrapped_attrs}
        return self.env_id + "".join(f"-{k}={v}" for k, v in options.items())


def uniform_box(low: list[float], high: list[float]):
    return lambda rng, n: rng.uniform(low, high, size=(n, len(low)))


def discrete(n_actions: int):
    return lambda rng, n: rng.integers(0, n_actions, size=n)


def continuous(bound: float):  # wider than the Box, so clipping is exercised
    return lambda rng, n: rng.uniform(-bound, bound, size=(n, 1)).astype(np.float32)


def cartpole_boundary(s: np.ndarray) -> float:
    return min(abs(abs(s[0]) - 2.4), abs(abs(s[2]) - 12 * 2 * math.pi / 360))


def acrobot_boundary(s: np.ndarray) -> float:
    return abs(-math.cos(s[0]) - math.cos(s[1] + s[0]) - 1.0)


def mountain_car_boundary(goal: float, goal_velocity: float = 0.0):
    return lambda s: min(abs(s[0] - goal), abs(s[1] - goal_velocity))


def mountain_car_states(rng: np.random.Generator, n: int) -> np.ndarray:
    """Anywhere on the track, a tenth of them against the left wall moving left, rounded to
    float32 as MountainCarContinuous stores its state."""
    states = rng.uniform([-1.2, -0.07], [0.6, 0.07], size=(n, 2))
    wall = rng.random(n) < 0.1
    states[wall, 0] = -1.2
    states[wall, 1] = -np.abs(states[wall, 1])
    return states.astype(np.float32).astype(np.float64)


CARTPOLE_STATES = uniform_box([-2.6, -3.0, -0.25, -3.5], [2.6, 3.0, 0.25, 3.5])
ACROBOT_STATES = uniform_box([-math.pi, -math.pi, -4 * math.pi, -9 * math.pi],
                             [math.pi, math.pi, 4 * math.pi, 9 * math.pi])
PENDULUM_STATES = uniform_box([-4 * math.pi, -8.0], [4 * math.pi, 8.0])

CASES = [
    Case("CartPole-v1", CARTPOLE_STATES, discrete(2), cartpole_boundary),
    Case("CartPole-v1", CARTPOLE_STATES, discrete(2), cartpole_boundary,
         kwargs={"sutton_barto_reward": True}),
    Case("Acrobot-v1", ACROBOT_STATES, discrete(3), acrobot_boundary),
    Case("Acrobot-v1", ACROBOT_STATES, discrete(3), acrobot_boundary,
         unwrapped_attrs={"book_or_nips": "nips"}, torch_only_kwargs={"book_or_nips": "nips"}),
    Case("MountainCar-v0", mountain_car_states, discrete(3), mountain_car_boundary(0.5)),
    Case("MountainCar-v0", mountain_car_states, discrete(3), mountain_car_boundary(0.5, 0.01),
         kwargs={"goal_velocity": 0.01}),
    # gymnasium computes this env's update in float32 arithmetic (its state is float32), so
    # float64 mode, rounding its state to float32 after each step, agrees to 2 float32 ulps.
    Case("MountainCarContinuous-v0", mountain_car_states, continuous(1.5),
         mountain_car_boundary(0.45), float64_tol=2.5e-7),
    # gymnasium multiplies the float32 torque in float32 before adding it to float64 terms; the
    # torch env keeps its angle wrapped where gymnasium's grows.
    Case("Pendulum-v1", PENDULUM_STATES, continuous(3.0), lambda s: math.inf, float64_tol=1e-7,
         angle_dims=(0,)),
    Case("Pendulum-v1", PENDULUM_STATES, continuous(3.0), lambda s: math.inf, float64_tol=1e-7,
         angle_dims=(0,), kwargs={"g": 9.81}),
]
ROLLOUT_CASES = [case for case in CASES if not case.kwargs and not case.unwrapped_attrs]


def make_pair(case: Case, num_envs: int, dtype: torch.dtype, seed: int = 0):
    env = make_torch_env(case.env_id, num_envs, seed=seed, dtype=dtype, **case.kwargs,
                         **case.torch_only_kwargs)
    reference = gym.make(case.env_id, **case.kwargs)
    reference.reset(seed=seed)
    for name, value in case.unwrapped_attrs.items():
        setattr(reference.unwrapped, name, value)
    return env, reference


def gymnasium_step(reference: gym.Env, env_id: str, state: np.ndarray, elapsed: int, action):
    """Steps ``reference`` from ``state`` after ``elapsed`` steps of its episode."""
    unwrapped = reference.unwrapped
    # MountainCarContinuous holds float64 right after reset and float32 after any step.
    float32_state = env_id == "MountainCarContinuous-v0" and elapsed > 0
    unwrapped.state = np.array(state, dtype=np.float32 if float32_state else np.float64)
    if hasattr(unwrapped, "steps_beyond_terminated"):
        unwrapped.steps_beyond_terminated = None
    reference._elapsed_steps = elapsed
    obs, reward, terminated, truncated, _ = reference.step(action)
    return obs, float(reward), terminated, truncated, np.array(unwrapped.state, dtype=np.float64)


def step_and_compare(env, reference, case: Case, action: np.ndarray) -> dict[str, int]:
    """Steps ``env`` with ``action`` and checks every env's transition against gymnasium."""
    before = env.state_dict()
    states, elapsed = before["state"].double().numpy(), before["elapsed_steps"].numpy()
    obs, reward, terminated, truncated, info = env.step(torch.as_tensor(action))
    after = env.state_dict()["state"].double().numpy()
    float32 = env.dtype == torch.float32
    tol = FLOAT32_TOL if float32 else case.float64_tol
    obs_tol = FLOAT32_TOL if float32 else 1e-6  # both sides round the same float64 to float32
    counts = {"terminated": 0, "truncated": 0, "flipped": 0}
    for i in range(env.num_envs):
        gym_action = int(action[i]) if action.ndim == 1 else action[i]
        g_obs, g_reward, g_term, g_trunc, g_state = gymnasium_step(
            reference, case.env_id, states[i], int(elapsed[i]), gym_action)
        where = f"{case.name} env {i} from state {states[i]} action {gym_action}"
        np.testing.assert_allclose(info["final_obs"][i].numpy(), g_obs, rtol=0, atol=obs_tol,
                                   err_msg=where)
        assert bool(truncated[i]) == g_trunc, where
        if bool(terminated[i]) != g_term:
            assert float32 and case.boundary_distance(g_state) < FLOAT32_TOL, where
            counts["flipped"] += 1
            continue
        assert reward[i].item() == pytest.approx(g_reward, abs=tol), where
        if not (g_term or g_trunc):
            difference = after[i] - g_state
            for dim in case.angle_dims:
                difference[dim] = (difference[dim] + math.pi) % (2 * math.pi) - math.pi
            np.testing.assert_allclose(difference, 0.0, rtol=0, atol=tol, err_msg=where)
        counts["terminated"] += g_term
        counts["truncated"] += g_trunc
    return counts


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_step_from_random_states_matches_gymnasium(case: Case, dtype: torch.dtype) -> None:
    num_envs = 512
    rng = np.random.default_rng(7)
    env, reference = make_pair(case, num_envs, dtype)
    env.reset()
    snapshot = env.state_dict()
    snapshot["state"] = torch.as_tensor(case.random_state(rng, num_envs), dtype=dtype)
    # Every step count, the last one before the time limit included for a quarter of the envs.
    elapsed = rng.integers(0, env.max_episode_steps, size=num_envs)
    elapsed[rng.random(num_envs) < 0.25] = env.max_episode_steps - 1
    snapshot["elapsed_steps"] = torch.as_tensor(elapsed)
    env.load_state_dict(snapshot)
    counts = step_and_compare(env, reference, case, case.random_action(rng, num_envs))
    assert counts["truncated"] > 50
    if case.env_id != "Pendulum-v1":
        assert counts["terminated"] > 5
    assert counts["flipped"] <= 2


@pytest.mark.parametrize("case", ROLLOUT_CASES, ids=lambda case: case.name)
def test_rollout_matches_gymnasium_every_step(case: Case) -> None:
    """Whole episodes from the torch env's own resets, through terminations, the time limit
    and autoresets."""
    num_envs = 12
    rng = np.random.default_rng(3)
    env, reference = make_pair(case, num_envs, torch.float32, seed=11)
    env.reset()
    totals = {"terminated": 0, "truncated": 0, "flipped": 0}
    steps = min(env.max_episode_steps + 10, 510)  # MountainCarContinuous: half its 999
    for _ in range(steps):
        counts = step_and_compare(env, reference, case, case.random_action(rng, num_envs))
        totals = {key: totals[key] + counts[key] for key in totals}
    assert totals["flipped"] <= 2
    if steps > env.max_episode_steps:
        assert totals["truncated"] + totals["terminated"] >= num_envs
    if case.env_id == "CartPole-v1":
        assert totals["terminated"] > 5 * num_envs
