"""The distractor CartPole: pixels follow the state, distractors do not, and seeds reproduce."""
import gymnasium as gym
import numpy as np
import pytest
import torch

from envs import make_env
from envs.distractor import ENV_ID, draw_blocks, draw_cartpole


def rollout(actions, seed=3, **options) -> list[np.ndarray]:
    env = gym.make(ENV_ID, **options)
    obs, _ = env.reset(seed=seed)
    frames = [obs]
    for action in actions:
        obs, *_ = env.step(action)
        frames.append(obs)
    return frames


def test_observations_are_uint8_frame_stacks_through_make_env():
    env = make_env(ENV_ID, 2, seed=0, size=48, frame_stack=3)
    obs = env.reset()
    assert obs.shape == (2, 3, 48, 48) and obs.dtype == torch.uint8
    assert env.single_observation_space.shape == (3, 48, 48)
    next_obs, reward, *_ = env.step(torch.tensor([0, 1]))
    assert next_obs.shape == (2, 3, 48, 48) and reward.tolist() == [1.0, 1.0]
    # The stack shifts by one frame per step.
    assert torch.equal(next_obs[:, :2], obs[:, 1:])
    env.close()


def test_the_cart_and_pole_are_drawn_where_the_state_says():
    upright = draw_cartpole(0.0, 0.0, 64)
    assert np.array_equal(upright, upright[:, ::-1])  # centred and upright: mirror-symmetric
    # Mirroring the state mirrors the picture.
    np.testing.assert_allclose(draw_cartpole(1.2, 0.15, 64)[:, ::-1], draw_cartpole(-1.2, -0.15, 64), atol=1e-5)
    columns = np.arange(64) + 0.5

    def centre_column(layer: np.ndarray) -> float:
        return float((layer.sum(axis=0) * columns).sum() / layer.sum())

    assert centre_column(draw_cartpole(-2.0, 0.0, 64)) < 16 < 48 < centre_column(draw_cartpole(2.0, 0.0, 64))
    # A pole leaning right puts its top pixels right of the cart's centre.
    top = draw_cartpole(0.0, 0.2, 64)[:30]
    assert centre_column(top) > 32.5


def test_frames_without_distractors_are_the_drawn_state():
    env = gym.make(ENV_ID, num_distractors=0, size=40)
    env.reset(seed=0)
    for _ in range(5):
        obs, *_ = env.step(1)
    cart_x, _, angle, _ = env.unwrapped.cartpole.state
    expected = np.round(draw_cartpole(cart_x, angle, 40) * 255).astype(np.uint8)
    assert np.array_equal(obs[-1], expected)
    assert not np.array_equal(obs[0], obs[-1])  # the state moved, so did the picture


def test_distractors_do_not_depend_on_the_state_or_the_actions():
    left = gym.make(ENV_ID, num_distractors=5)
    right = gym.make(ENV_ID, num_distractors=5)
    left.reset(seed=11)
    right.reset(seed=11)
    for _ in range(6):  # not yet terminated
        left_obs, *_ = left.step(0)
        right_obs, *_ = right.step(1)
    assert not np.allclose(left.unwrapped.cartpole.state, right.unwrapped.cartpole.state)
    assert np.array_equal(left.unwrapped.corners, right.unwrapped.corners)
    blocks = draw_blocks(left.unwrapped.corners, left.unwrapped.sides, left.unwrapped.shades, 64)
    background = ((draw_cartpole(left.unwrapped.cartpole.state[0], left.unwrapped.cartpole.state[2], 64) == 0) &
                  (draw_cartpole(right.unwrapped.cartpole.state[0], right.unwrapped.cartpole.state[2], 64) == 0))
    assert np.array_equal(left_obs[-1][background], right_obs[-1][background])
    assert blocks[background].max() > 0  # the blocks are there to compare
    assert not np.array_equal(left_obs[-1], right_obs[-1])


def test_distractor_blocks_move_and_stay_in_the_frame():
    env = gym.make(ENV_ID, num_distractors=6, distractor_speed=5.0).unwrapped
    env.reset(seed=2)
    start = env.corners.copy()
    for _ in range(40):
        env._move_distractors()
        assert (env.corners >= 0).all() and (env.corners <= (64 - env.sides)[:, None]).all()
    assert not np.array_equal(start, env.corners)


def test_same_seed_same_frames_other_seed_other_frames():
    actions = [0, 1, 1, 0, 1, 0, 0, 1]
    first, second = rollout(actions, noise_std=0.1), rollout(actions, noise_std=0.1)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not np.array_equal(rollout(actions, seed=4)[0], rollout(actions, seed=3)[0])


def test_noise_changes_the_background():
    clean, noisy = rollout([0], num_distractors=0), rollout([0], num_distractors=0, noise_std=0.2)
    assert clean[1][-1].std() < noisy[1][-1].std()


@pytest.mark.parametrize("options, message", [({"size": 20}, "size"), ({"frame_stack": 0}, "frame_stack"),
                                              ({"num_distractors": -1}, "num_distractors"),
                                              ({"noise_std": 2.0}, "noise_std")])
def test_bad_options_raise_value_errors(options, message):
    with pytest.raises(ValueError, match=message):
        gym.make(ENV_ID, **options)
