"""Seed groups: a torch env built with K seeds steps K independent batches as one, group k
reproducing exactly a batch built with seed k alone (both reset modes, checkpoints included)."""
from __future__ import annotations

import pytest
import torch

from envs.torch_envs import TORCH_ENVS, make_torch_env

SEEDS = [3, 11, 7]
GROUP = 4


def actions_for(env_id: str, steps: int) -> torch.Tensor:
    """Per step, per group, per env: the same random actions for the grouped and the single runs."""
    env = make_torch_env(env_id, 1)
    space = env.single_action_space
    generator = torch.Generator().manual_seed(0)
    if hasattr(space, "n"):
        return torch.randint(0, int(space.n), (steps, len(SEEDS), GROUP), generator=generator)
    return (torch.rand(steps, len(SEEDS), GROUP, *space.shape, generator=generator) * 2 - 1) * float(space.high[0])


def trajectory(env, actions: torch.Tensor) -> list[torch.Tensor]:
    """Observations, rewards, terminations, truncations and final observations of every step."""
    out = [env.reset()]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        out += [obs, reward, terminated, truncated, info["final_obs"], info["episode_return"]]
    return out


@pytest.mark.parametrize("draw_all", [False, True])
@pytest.mark.parametrize("env_id", list(TORCH_ENVS))
def test_each_group_equals_its_own_single_seed_env(env_id: str, draw_all: bool) -> None:
    steps = 130  # at least three episodes per env in all five envs (short max_episode_steps below)
    actions = actions_for(env_id, steps)
    grouped = make_torch_env(env_id, GROUP * len(SEEDS), seed=SEEDS, max_episode_steps=40,
                             draw_resets_for_all=draw_all)
    together = trajectory(grouped, actions.flatten(1, 2))
    for k, seed in enumerate(SEEDS):
        alone = trajectory(make_torch_env(env_id, GROUP, seed=seed, max_episode_steps=40,
                                          draw_resets_for_all=draw_all), actions[:, k])
        for joint, single in zip(together, alone, strict=True):
            assert torch.equal(joint[k * GROUP:(k + 1) * GROUP], single)


def test_grouped_env_resumes_from_its_state_dict() -> None:
    actions = actions_for("CartPole-v1", 200).flatten(1, 2)
    env = make_torch_env("CartPole-v1", GROUP * len(SEEDS), seed=SEEDS)
    env.reset()
    for action in actions[:100]:
        env.step(action)
    state = env.state_dict()
    rest = [env.step(action)[0] for action in actions[100:]]
    resumed = make_torch_env("CartPole-v1", GROUP * len(SEEDS), seed=[0, 0, 0])
    resumed.reset()
    resumed.load_state_dict(state)
    assert all(torch.equal(a, resumed.step(action)[0]) for a, action in zip(rest, actions[100:]))


def test_bad_seed_groups_are_refused() -> None:
    with pytest.raises(ValueError, match="multiple of the number of seeds"):
        make_torch_env("CartPole-v1", 5, seed=[1, 2])
    with pytest.raises(ValueError, match="list of integers"):
        make_torch_env("CartPole-v1", 4, seed=[])
    env = make_torch_env("CartPole-v1", 4, seed=[1, 2])
    with pytest.raises(ValueError, match="2 seed groups"):
        env.reset(seed=5)
    with pytest.raises(ValueError, match="seed groups"):
        make_torch_env("CartPole-v1", 4, seed=1).load_state_dict(env.state_dict())
