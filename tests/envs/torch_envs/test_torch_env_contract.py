"""The torch envs as ``VecEnv``s: spaces, reset distributions, same-step autoreset, episode
statistics, seeding, checkpoints and bad input."""
from __future__ import annotations

import io
import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from envs.torch_envs import TORCH_ENVS, TorchCartPole, TorchPendulum, make_torch_env

ENV_IDS = list(TORCH_ENVS)
# Per state variable: (low, high) of gymnasium's reset distribution, None for a constant 0.
RESET_BOUNDS = {
    "CartPole-v1": [(-0.05, 0.05)] * 4,
    "Acrobot-v1": [(-0.1, 0.1)] * 4,
    "MountainCar-v0": [(-0.6, -0.4), None],
    "MountainCarContinuous-v0": [(-0.6, -0.4), None],
    "Pendulum-v1": [(-math.pi, math.pi), (-1.0, 1.0)],
}


def random_actions(env, generator: torch.Generator) -> torch.Tensor:
    space = env.single_action_space
    if isinstance(space, gym.spaces.Discrete):
        return torch.randint(0, int(space.n), (env.num_envs,), generator=generator)
    return (torch.rand(env.num_envs, *space.shape, generator=generator) * 2 - 1) * float(space.high[0])


def rollout(env, steps: int, action_seed: int = 0) -> list[tuple]:
    generator = torch.Generator().manual_seed(action_seed)
    return [env.step(random_actions(env, generator)) for _ in range(steps)]


def assert_same_outputs(first: list[tuple], second: list[tuple]) -> None:
    for a, b in zip(first, second, strict=True):
        for x, y in zip(a[:4], b[:4]):
            assert torch.equal(x, y)
        for key in a[4]:
            assert torch.equal(a[4][key], b[4][key])


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_spaces_equal_gymnasium(env_id: str) -> None:
    env, reference = make_torch_env(env_id, 3), gym.make(env_id)
    assert env.single_observation_space == reference.observation_space
    assert env.single_action_space == reference.action_space
    assert env.max_episode_steps == reference.spec.max_episode_steps


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_reset_distribution_is_gymnasiums(env_id: str, dtype: torch.dtype) -> None:
    """Each variable uniform on its bounds: Kolmogorov-Smirnov distance to the exact CDF."""
    num_envs = 20_000
    env = make_torch_env(env_id, num_envs, seed=5, dtype=dtype)
    obs = env.reset()
    assert obs.shape == (num_envs, *env.single_observation_space.shape) and obs.dtype == torch.float32
    assert env.single_observation_space.contains(obs[0].numpy())
    state = env.state_dict()["state"].double()
    for column, bounds in enumerate(RESET_BOUNDS[env_id]):
        values = state[:, column].sort().values
        if bounds is None:
            assert torch.all(values == 0)
            continue
        low, high = bounds
        assert low <= values[0] and values[-1] <= high
        cdf = (values - low) / (high - low)
        ranks = torch.arange(1, num_envs + 1, dtype=torch.float64) / num_envs
        # P(KS > 0.015) < 3e-4 for a correct sampler at this size (DKW inequality).
        assert torch.max(torch.abs(cdf - ranks)).item() < 0.015
    if env_id == "Acrobot-v1":  # drawn in float64, then rounded to float32 as gymnasium does
        assert torch.equal(state, state.float().double())


@pytest.mark.parametrize("draw_all", [False, True], ids=["draw-ended", "draw-all"])
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_step_autoreset_and_episode_statistics(env_id: str, draw_all: bool) -> None:
    """Against a loop that sums each env's rewards: returns, lengths and masks of finished
    episodes, ``final_obs`` where they end, a fresh reset observation returned in their place."""
    num_envs, limit = 16, 40
    env = make_torch_env(env_id, num_envs, seed=1, max_episode_steps=limit,
                         draw_resets_for_all=draw_all)
    env.reset()
    running_return, running_length = [0.0] * num_envs, [0] * num_envs
    episodes, generator = 0, torch.Generator().manual_seed(0)
    for _ in range(3 * limit):
        obs, reward, terminated, truncated, info = env.step(random_actions(env, generator))
        done = terminated | truncated
        assert torch.equal(info["episode_done"], done)
        assert torch.equal(truncated, torch.tensor([n + 1 >= limit for n in running_length]))
        state = env.state_dict()
        for i in range(num_envs):
            running_return[i] += reward[i].item()
            running_length[i] += 1
            if done[i]:
                assert info["episode_return"][i].item() == pytest.approx(running_return[i], abs=1e-4)
                assert info["episode_length"][i].item() == running_length[i]
                assert state["elapsed_steps"][i] == 0 and state["episode_length"][i] == 0
                assert not torch.equal(obs[i], info["final_obs"][i])
                fresh = state["state"][i].double()
                for value, bounds in zip(fresh, RESET_BOUNDS[env_id]):
                    assert (value == 0) if bounds is None else bounds[0] <= value <= bounds[1]
                running_return[i], running_length[i] = 0.0, 0
                episodes += 1
            else:
                assert info["episode_return"][i] == 0 and info["episode_length"][i] == 0
                assert torch.equal(obs[i], info["final_obs"][i])
                assert state["elapsed_steps"][i] == running_length[i]
    assert episodes >= 2 * num_envs


def test_terminated_and_truncated_together_on_the_last_step() -> None:
    """gymnasium's TimeLimit reports truncated on its last step even when the env terminated."""
    env = TorchCartPole(2)
    env.reset()
    snapshot = env.state_dict()
    snapshot["state"] = torch.tensor([[2.39, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    snapshot["elapsed_steps"] = torch.tensor([499, 10])
    env.load_state_dict(snapshot)
    _, reward, terminated, truncated, info = env.step(torch.tensor([1, 1]))
    assert terminated.tolist() == [True, False] and truncated.tolist() == [True, False]
    assert reward.tolist() == [1.0, 1.0]
    assert info["episode_length"].tolist() == [1, 0]  # the loaded statistics started at 0


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_seeded_runs_are_identical_and_seeds_differ(env_id: str) -> None:
    def run(seed: int, reseed: int | None = None):
        env = make_torch_env(env_id, 8, seed=seed, max_episode_steps=25)
        first_obs = env.reset(seed=reseed)
        return first_obs, rollout(env, 60)

    obs_a, steps_a = run(3)
    obs_b, steps_b = run(3)
    assert torch.equal(obs_a, obs_b)
    assert_same_outputs(steps_a, steps_b)
    obs_c, steps_c = run(99, reseed=3)  # reset(seed=) overrides the constructor's seed
    assert torch.equal(obs_a, obs_c)
    assert_same_outputs(steps_a, steps_c)
    assert not torch.equal(run(4)[0], obs_a)


@pytest.mark.parametrize("draw_all", [False, True], ids=["draw-ended", "draw-all"])
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_state_dict_round_trip_continues_bit_for_bit(env_id: str, draw_all: bool) -> None:
    options = {"max_episode_steps": 30, "draw_resets_for_all": draw_all}
    env = make_torch_env(env_id, 8, seed=2, **options)
    env.reset()
    rollout(env, 45, action_seed=1)
    buffer = io.BytesIO()
    torch.save(env.state_dict(), buffer)
    continued = rollout(env, 50, action_seed=2)

    resumed = make_torch_env(env_id, 8, seed=123, **options)
    buffer.seek(0)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert_same_outputs(continued, rollout(resumed, 50, action_seed=2))


def test_float64_outputs_float32_observations() -> None:
    env = TorchPendulum(4, dtype=torch.float64)
    obs = env.reset()
    obs, reward, terminated, truncated, info = env.step(torch.zeros(4, 1, dtype=torch.float64))
    assert obs.dtype == info["final_obs"].dtype == torch.float32
    assert reward.dtype == info["episode_return"].dtype == torch.float64
    assert terminated.dtype == truncated.dtype == info["episode_done"].dtype == torch.bool
    assert info["episode_length"].dtype == torch.int64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_cuda_steps_like_the_cpu(env_id: str) -> None:
    """Same state, same actions: the GPU's transitions equal the CPU's to float32 round-off."""
    cpu = make_torch_env(env_id, 256, seed=0)
    gpu = make_torch_env(env_id, 256, seed=0, device="cuda")
    cpu.reset(), gpu.reset()
    snapshot = cpu.state_dict()
    gpu_snapshot = gpu.state_dict()
    gpu_snapshot.update({key: value.cuda() for key, value in snapshot.items()
                         if key in ("state", "elapsed_steps", "episode_return", "episode_length")})
    gpu.load_state_dict(gpu_snapshot)
    actions = random_actions(cpu, torch.Generator().manual_seed(0))
    cpu_out, gpu_out = cpu.step(actions), gpu.step(actions.cuda())
    assert gpu_out[0].device.type == "cuda"
    torch.testing.assert_close(gpu_out[4]["final_obs"].cpu(), cpu_out[4]["final_obs"],
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(gpu_out[1].cpu(), cpu_out[1], atol=1e-5, rtol=0)


def test_registry_and_bad_input() -> None:
    assert set(TORCH_ENVS) == {"CartPole-v1", "Acrobot-v1", "MountainCar-v0",
                               "MountainCarContinuous-v0", "Pendulum-v1"}
    with pytest.raises(ValueError, match="no torch-native env"):
        make_torch_env("LunarLander-v3", 2)
    with pytest.raises(ValueError, match="bad options"):
        make_torch_env("CartPole-v1", 2, gravity=3.0)
    with pytest.raises(ValueError, match="num_envs"):
        make_torch_env("CartPole-v1", 0)
    with pytest.raises(ValueError, match="dtype"):
        make_torch_env("CartPole-v1", 2, dtype=torch.float16)
    with pytest.raises(ValueError, match="book_or_nips"):
        make_torch_env("Acrobot-v1", 2, book_or_nips="paper")
    cartpole, pendulum = TorchCartPole(3), TorchPendulum(3)
    with pytest.raises(ValueError, match="reset"):
        cartpole.step(torch.zeros(3, dtype=torch.int64))
    cartpole.reset(), pendulum.reset()
    bad_steps = [
        (cartpole, torch.zeros(4, dtype=torch.int64), "shape"),
        (cartpole, torch.zeros(3), "integers"),
        (cartpole, torch.tensor([0, 1, 2]), r"\[0, 1\]"),
        (cartpole, torch.tensor([0, -1, 1]), r"\[0, 1\]"),
        (cartpole, np.zeros(3, dtype=np.int64), "torch.Tensor"),
        (pendulum, torch.zeros(3), "shape"),
        (pendulum, torch.zeros(3, 1, dtype=torch.int64), "floating point"),
    ]
    for env, action, message in bad_steps:
        with pytest.raises(ValueError, match=message):
            env.step(action)
    snapshot = cartpole.state_dict()
    with pytest.raises(ValueError, match="Pendulum-v1"):
        pendulum.load_state_dict(snapshot)
    with pytest.raises(ValueError, match="shape"):
        TorchCartPole(4).load_state_dict(snapshot)
