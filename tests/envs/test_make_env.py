import enum
import io

import gymnasium as gym
import numpy as np
import pytest
import torch

from envs import make_env
from envs.atari import AtariVecEnv, atari_game_name
from wrappers.env_state import get_env_state, set_env_state
from envs.episode_sums import EpisodeSums
from wrappers.episode_stats import EpisodeStatistics
from wrappers.normalize import NormalizeObservation, NormalizeReward, RunningMeanStd, observation_stats


def test_episode_statistics_sum_the_same_on_host_arrays_as_on_device_tensors():
    """On the CPU the wrapper sums in numpy; elsewhere in torch (here forced on CPU tensors): the
    same returns, lengths and ends at every step, in the same dtypes."""
    host, device_way = make_env("CartPole-v1", 3, seed=2), make_env("CartPole-v1", 3, seed=2)
    assert isinstance(host, EpisodeStatistics) and host._sums.on_host
    device_way._sums = EpisodeSums(torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.int64))
    host.reset(), device_way.reset()
    rng, ends = np.random.default_rng(1), 0
    for _ in range(300):
        action = torch.as_tensor(rng.integers(0, 2, 3))
        info, device_info = host.step(action)[4], device_way.step(action)[4]
        for key in ("episode_done", "episode_return", "episode_length"):
            assert info[key].dtype == device_info[key].dtype and torch.equal(info[key], device_info[key]), key
        ends += int(info["episode_done"].sum())
    assert ends > 10 and info["episode_length"].dtype == torch.int64
    state = host.state_dict()
    torch.testing.assert_close(state["return"], device_way.state_dict()["return"], rtol=0, atol=0)
    device_way.load_state_dict(state)  # a checkpoint of either kind restores the other
    assert torch.equal(device_way._sums.lengths, torch.from_numpy(host._sums.lengths))


def test_gym_vec_env_matches_single_gymnasium_envs_including_final_obs():
    """Same seeds and actions: obs, rewards, terminations and the kept final obs match gymnasium."""
    num_envs, seed = 3, 5
    env = make_env("CartPole-v1", num_envs, seed=seed)
    refs = [gym.make("CartPole-v1") for _ in range(num_envs)]
    obs = env.reset()
    ref_obs = [ref.reset(seed=seed + i)[0] for i, ref in enumerate(refs)]
    np.testing.assert_allclose(obs.numpy(), np.stack(ref_obs), rtol=0, atol=0)
    rng = np.random.default_rng(0)
    episodes = 0
    ref_returns = np.zeros(num_envs)
    for _ in range(400):
        actions = rng.integers(0, 2, num_envs)
        obs, reward, terminated, truncated, info = env.step(torch.as_tensor(actions))
        for i, ref in enumerate(refs):
            ref_next, ref_reward, ref_term, ref_trunc, _ = ref.step(int(actions[i]))
            ref_returns[i] += ref_reward
            assert reward[i].item() == ref_reward and terminated[i].item() == ref_term and truncated[i].item() == ref_trunc
            np.testing.assert_array_equal(info["final_obs"][i].numpy(), ref_next.astype(np.float32))
            if ref_term or ref_trunc:
                episodes += 1
                assert info["episode_done"][i]
                assert info["episode_return"][i].item() == ref_returns[i]
                ref_returns[i] = 0
                ref_next, _ = ref.reset()
                assert not torch.equal(obs[i], info["final_obs"][i])
            else:
                assert not info["episode_done"][i]
            np.testing.assert_array_equal(obs[i].numpy(), ref_next.astype(np.float32))
    assert episodes > 10


def test_tuple_observations_are_one_row_major_index_of_single_gymnasium_envs():
    """Blackjack's (player sum, dealer card, usable ace), next and final observations alike."""
    num_envs, seed = 3, 2
    env = make_env("Blackjack-v1", num_envs, seed=seed)
    assert env.single_observation_space == gym.spaces.Discrete(32 * 11 * 2)
    refs = [gym.make("Blackjack-v1") for _ in range(num_envs)]

    def index(obs):
        player, dealer, ace = obs
        return (player * 11 + dealer) * 2 + ace

    obs = env.reset()
    assert obs.tolist() == [index(ref.reset(seed=seed + i)[0]) for i, ref in enumerate(refs)]
    rng = np.random.default_rng(0)
    episodes = 0
    for _ in range(300):
        actions = rng.integers(0, 2, num_envs)
        obs, reward, terminated, _, info = env.step(torch.as_tensor(actions))
        for i, ref in enumerate(refs):
            ref_next, ref_reward, ref_term, _, _ = ref.step(int(actions[i]))
            assert reward[i].item() == ref_reward and terminated[i].item() == ref_term
            assert info["final_obs"][i].item() == index(ref_next)
            if ref_term:
                episodes += 1
                ref_next, _ = ref.reset()
            assert obs[i].item() == index(ref_next)
    assert episodes > 100


def test_env_state_keeps_numpy_scalars_strings_and_sequences_and_loads_without_code():
    """What a checkpoint holds of an env loads with weights_only and comes back with its types."""
    env = gym.make("Blackjack-v1")
    env.reset(seed=0)
    inner = env.unwrapped
    inner.extra = (np.float32(0.1), np.str_("Q"), [np.int64(3), 4.5], np.bool_(True), enum.IntEnum("Suit", "H S")(2))
    state = get_env_state(env)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    inner.extra, hands = None, (list(inner.player), list(inner.dealer))
    inner.player, inner.dealer = [], []
    set_env_state(env, loaded)
    assert (inner.player, inner.dealer) == hands
    scalar, text, sequence, flag, suit = inner.extra
    assert type(scalar) is np.float32 and scalar == np.float32(0.1)
    assert text == "Q" and sequence == [3, 4.5] and type(sequence[0]) is np.int64 and type(flag) is np.bool_
    assert suit == 2 and type(suit) is int


@pytest.mark.parametrize("env_id", ["ALE/Pong-v5", "PongNoFrameskip-v4", "Pong", "pong"])
def test_atari_ids_resolve_to_the_rom(env_id):
    assert atari_game_name(env_id) == "pong"


@pytest.mark.parametrize("env_id", ["NoSuchEnv-v0", "ALE/NoSuchGame-v5"])
def test_unknown_ids_raise_a_one_line_error(env_id):
    with pytest.raises(ValueError, match="unknown environment id"):
        make_env(env_id, 2)


@pytest.mark.parametrize("env_id, options, sticky", [
    ("ALE/Pong-v5", {}, 0.25), ("PongNoFrameskip-v4", {}, 0.0), ("Pong", {}, 0.0),
    ("ALE/Pong-v5", {"sticky_actions": 0.0}, 0.0), ("Pong", {"sticky_actions": 0.1}, 0.1),
])
def test_v5_atari_ids_repeat_actions_as_gymnasium_s_v5_envs_do(env_id, options, sticky):
    env = make_env(env_id, 1, **options)
    atari = env
    while not isinstance(atari, AtariVecEnv):
        atari = atari.env
    assert atari.sticky_actions == sticky
    env.close()


def test_atari_life_loss_terminates_for_learning_but_scores_whole_games():
    env = make_env("BreakoutNoFrameskip-v4", 2, seed=0, clip_rewards=False, episodic_life=True)
    obs = env.reset()
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == torch.uint8
    raw = torch.zeros(2, dtype=torch.float64)
    terminations = games = 0
    generator = torch.Generator().manual_seed(0)
    for _ in range(1500):
        _, reward, terminated, truncated, info = env.step(torch.randint(0, 4, (2,), generator=generator))
        raw += reward
        terminations += int(terminated.sum())
        done = info["episode_done"]
        if done.any():
            torch.testing.assert_close(info["episode_return"][done], raw[done])
            games += int(done.sum())
            raw[done] = 0
    assert games >= 1 and terminations >= 4 * games  # five lives per Breakout game


def test_atari_clips_rewards_to_signs_while_episode_returns_keep_the_game_score():
    """Space Invaders scores 5 to 30 an invader: the clipped env's rewards are the signs of the
    unclipped one's, and both report the same raw episode returns."""
    clipped = make_env("SpaceInvadersNoFrameskip-v4", 2, seed=0)
    raw = make_env("SpaceInvadersNoFrameskip-v4", 2, seed=0, clip_rewards=False)
    clipped.reset(), raw.reset()
    generator, score = torch.Generator().manual_seed(0), torch.zeros(2, dtype=torch.float64)
    for _ in range(300):
        action = torch.randint(0, 6, (2,), generator=generator)
        _, reward, _, _, info = clipped.step(action)
        _, raw_reward, _, _, raw_info = raw.step(action)
        assert reward.dtype == torch.float32 and torch.equal(reward, torch.sign(raw_reward))
        score += raw_reward
        assert torch.equal(info["episode_return"], score) and torch.equal(raw_info["episode_return"], score)
    assert score.min() > 20  # several invaders each, worth more than 1
    clipped.close(), raw.close()


def test_running_mean_std_matches_numpy_over_all_batches():
    stats = RunningMeanStd((2,), torch.device("cpu"))
    data = torch.randn(50, 7, 2, dtype=torch.float64) * torch.tensor([3.0, 0.5]) + torch.tensor([1.0, -2.0])
    for batch in data:
        stats.update(batch)
    flat = data.reshape(-1, 2).numpy()
    np.testing.assert_allclose(stats.mean.numpy(), flat.mean(0), rtol=1e-6)
    np.testing.assert_allclose(stats.var.numpy(), flat.var(0), rtol=1e-4)


def test_normalized_final_obs_uses_the_same_statistics():
    env = NormalizeObservation(make_env("CartPole-v1", 4, seed=0))
    env.reset()
    for _ in range(200):
        obs, _, terminated, truncated, info = env.step(torch.randint(0, 2, (4,)))
        ended = terminated | truncated
        torch.testing.assert_close(info["final_obs"][~ended], obs[~ended])
    assert obs.abs().max() <= 10.0


def test_grouped_normalisation_scales_each_group_as_its_own_wrappers_would():
    """A multi-seed run's env is the seeds' env groups side by side: each group's observations
    and rewards are scaled by statistics of its own, bit for bit those of separate wrappers,
    and each group's statistics serve its evaluation env as views that follow the updates."""
    seeds = [3, 4, 5]
    grouped = NormalizeReward(NormalizeObservation(make_env("Acrobot-v1", 12, seed=seeds, backend="torch"),
                                                   groups=3), groups=3)
    alone = [NormalizeReward(NormalizeObservation(make_env("Acrobot-v1", 4, seed=seed, backend="torch")))
             for seed in seeds]
    obs = grouped.reset(seed=seeds)
    assert all(torch.equal(obs[4 * k:4 * k + 4], env.reset(seed=seed)) for k, (env, seed) in enumerate(zip(alone, seeds)))
    stats = observation_stats(grouped)
    views = [stats.group(k) for k in range(3)]
    generator = torch.Generator().manual_seed(0)
    for _ in range(300):
        action = torch.randint(0, 3, (12,), generator=generator)
        obs, reward, *_ = grouped.step(action)
        for k, env in enumerate(alone):
            own_obs, own_reward, *_ = env.step(action[4 * k:4 * k + 4])
            assert torch.equal(obs[4 * k:4 * k + 4], own_obs) and torch.equal(reward[4 * k:4 * k + 4], own_reward)
    for k, (view, env) in enumerate(zip(views, alone)):
        own = observation_stats(env)
        assert torch.equal(view.mean, own.mean) and torch.equal(view.var, own.var) and torch.equal(view.count, own.count)
        assert torch.equal(grouped.stats.group(k).var, env.stats.var)  # the rewards' statistics
    assert not torch.equal(views[0].mean, views[1].mean)


def test_observation_statistics_are_found_under_reward_normalisation():
    """A training env normalising both is NormalizeReward(NormalizeObservation(env)); its
    evaluation env must still share the observation statistics."""
    inner = NormalizeObservation(make_env("CartPole-v1", 2, seed=0))
    assert observation_stats(NormalizeReward(inner)) is inner.stats
    assert observation_stats(inner) is inner.stats
    assert observation_stats(NormalizeReward(make_env("CartPole-v1", 2, seed=0))) is None


@pytest.mark.parametrize("env_id, options, num_actions", [
    ("Acrobot-v1", {}, 3),
    # its CartPole is an env held by the env, its frames a deque (of numpy arrays)
    ("reprl/DistractorCartPole-v0", {"size": 48}, 2),
])
def test_env_state_round_trip_continues_identically(env_id, options, num_actions):
    env = make_env(env_id, 2, seed=3, **options)
    env.reset()
    for _ in range(20):
        env.step(torch.randint(0, num_actions, (2,)))
    state = torch.load(io.BytesIO(_saved(env.state_dict())), weights_only=True)
    actions = torch.randint(0, num_actions, (300, 2))
    first = [env.step(a)[0] for a in actions]
    for _ in range(7):  # elsewhere by then, so that the state must come back whole
        env.step(torch.randint(0, num_actions, (2,)))
    env.load_state_dict(state)
    second = [env.step(a)[0] for a in actions]
    assert all(torch.equal(a, b) for a, b in zip(first, second))


def _saved(state) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


class _ShiftedActionCartPole(gym.ActionWrapper):
    """CartPole whose actions are 5 and 6 (a Discrete space starting at 5); it refuses others,
    and keeps those it got in ``received`` (one list for all its copies)."""

    received: list[int] = []

    def __init__(self, render_mode=None):
        super().__init__(gym.make("CartPole-v1", render_mode=render_mode))
        self.action_space = gym.spaces.Discrete(2, start=5)

    def action(self, action):
        assert self.action_space.contains(action), action
        self.received.append(int(action))
        return int(action) - 5


def test_a_discrete_action_space_that_does_not_start_at_0_is_indexed_from_0_for_agents():
    gym.register("reprl-test/ShiftedActionCartPole-v0", entry_point=_ShiftedActionCartPole)
    try:
        env = make_env("reprl-test/ShiftedActionCartPole-v0", 2)
        assert env.single_action_space == gym.spaces.Discrete(2)
        env.reset()
        env.step(torch.tensor([0, 1]))
        assert _ShiftedActionCartPole.received == [5, 6]
    finally:
        gym.registry.pop("reprl-test/ShiftedActionCartPole-v0")


class _Float64Walk(gym.Env):
    """A float64 observation and reward that float32 rounds: 1/3 per step, ending after 3 steps."""
    observation_space = gym.spaces.Box(-10.0, 10.0, (2,), np.float64)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, render_mode=None):
        self.render_mode, self.t = render_mode, 0

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0, -1 / 3]), {}

    def step(self, action):
        self.t += 1
        return np.array([self.t / 3, -1 / 3]), 1 / 3 + self.t, self.t == 3, False, {}


def test_float64_observations_and_rewards_arrive_as_float32_tensors():
    gym.register("reprl-test/Float64Walk-v0", entry_point=_Float64Walk)
    try:
        env = make_env("reprl-test/Float64Walk-v0", 2)
        obs = env.reset()
        assert obs.dtype == torch.float32 and obs.tolist() == [[0.0, np.float32(-1 / 3)]] * 2
        for t in (1, 2, 3):
            obs, reward, _, _, info = env.step(torch.tensor([0, 1]))
            assert reward.dtype == info["final_obs"].dtype == obs.dtype == torch.float32
            assert reward.tolist() == [np.float32(1 / 3 + t)] * 2
            assert info["final_obs"].tolist() == [[np.float32(t / 3), np.float32(-1 / 3)]] * 2
        assert obs.tolist() == [[0.0, np.float32(-1 / 3)]] * 2  # the new episodes' first observations
    finally:
        gym.registry.pop("reprl-test/Float64Walk-v0")
