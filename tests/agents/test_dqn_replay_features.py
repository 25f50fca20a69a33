"""DQN with ``replay_features``: replay holds the frozen encoder's features, and learning is the
same as with the observations stored and encoded at every update."""
import pytest
import torch

from agents import DQN
from envs import make_env

SETTINGS = dict(freeze_encoder=True, buffer_size=4_000, batch_size=32, learning_starts=0, num_envs=4,
                encoder_options={"hidden_sizes": [16], "activation": "tanh"}, head_hidden=8)


def fill_both(stored_obs: DQN, stored_features: DQN, steps: int, restart_at: int, in_pairs: bool = False) -> None:
    """Feeds both agents the same random-policy transitions, the envs restarted once mid-way
    (as a resumed run with envs that cannot be snapshotted does); ``in_pairs``: two envs at a time
    in a random order, as an asynchronous env returns them."""
    env = make_env("CartPole-v1", 4, seed=3)
    order = torch.Generator().manual_seed(0)
    obs = env.reset(seed=3)
    for step in range(steps):
        if step == restart_at:
            obs = env.reset(seed=4)
            for agent in (stored_obs, stored_features):
                agent.episodes_restarted()
        action = torch.randint(2, (4,))
        next_obs, reward, terminated, truncated, info = env.step(action)
        transition = (obs, action, reward, info["final_obs"], terminated, truncated)
        for envs in torch.randperm(4, generator=order).chunk(2) if in_pairs else [None]:
            rows = transition if envs is None else [field[envs] for field in transition]
            for agent in (stored_obs, stored_features):
                agent.observe(*rows, {}, env_ids=envs)
        obs = next_obs


@pytest.mark.parametrize("in_pairs", [False, True])
def test_stored_features_are_the_encoders_and_give_the_same_update(in_pairs):
    plain = DQN.from_env("CartPole-v1", **SETTINGS)
    cached = DQN.from_env("CartPole-v1", replay_features=True, **SETTINGS)
    for agent in (plain, cached):
        agent.setup_training(4)
    assert cached.buffer.frames.obs_shape == (16,)
    fill_both(plain, cached, steps=300, restart_at=170, in_pairs=in_pairs)  # CartPole's random episodes end every ~20 steps

    # ~1,200 transitions: 4,096 draws miss each one with probability exp(-3.4)
    torch.manual_seed(0)
    raw = plain.buffer.sample(4096)
    torch.manual_seed(0)
    features = cached.buffer.sample(4096)
    torch.testing.assert_close(features.indices, raw.indices)
    assert bool(raw.terminated.any())
    encoder = plain.q.encoder
    with torch.no_grad():
        torch.testing.assert_close(features.obs, encoder(raw.obs))
        torch.testing.assert_close(features.next_obs, encoder(raw.next_obs))

    batch_raw, batch_features = raw.chunk(128)[0], features.chunk(128)[0]
    torch.testing.assert_close(cached.td_target(batch_features), plain.td_target(batch_raw))
    metrics_plain, metrics_cached = plain.update(batch_raw), cached.update(batch_features)
    torch.testing.assert_close(metrics_cached["losses/td_loss"], metrics_plain["losses/td_loss"])
    for after_cached, after_plain in zip(cached.q.head.parameters(), plain.q.head.parameters()):
        torch.testing.assert_close(after_cached, after_plain)


def test_acting_still_takes_observations():
    agent = DQN.from_env("CartPole-v1", replay_features=True, **SETTINGS)
    obs = torch.randn(5, 4)
    torch.testing.assert_close(agent.act(obs, explore=False), agent.q.q_values(obs).argmax(1))


@pytest.mark.parametrize("settings, message", [
    (dict(replay_features=True), "needs --freeze-encoder"),
    (dict(replay_features=True, freeze_encoder=True, aux="deepmdp"), "--aux"),
    (dict(standardize_features=True), "needs --freeze-encoder"),
])
def test_replay_features_rejects_what_it_cannot_serve(settings, message):
    with pytest.raises(ValueError, match=message):
        DQN.from_env("CartPole-v1", **settings)


def test_feature_standardizer_fits_mean_and_spread_then_clips():
    from agents.networks import FeatureStandardizer

    features = torch.tensor([[1.0, 5.0, 2.0], [3.0, 5.0, 2.0], [5.0, 5.0, 2.0]])
    standardize = FeatureStandardizer(3)
    torch.testing.assert_close(standardize(features), features)  # identity until fitted
    standardize.fit(features)
    std = (8.0 / 3.0 + 1e-8) ** 0.5
    torch.testing.assert_close(standardize.mean, torch.tensor([3.0, 5.0, 2.0]))
    torch.testing.assert_close(standardize(torch.tensor([[4.0, 5.0, 2.0]])), torch.tensor([[1.0 / std, 0.0, 0.0]]))
    # a dimension constant during the fit is clipped, not blown up, where it later moves
    torch.testing.assert_close(standardize(torch.tensor([[3.0, 5.1, 2.0]])), torch.tensor([[0.0, 10.0, 0.0]]))


@pytest.mark.parametrize("replay_features", [False, True])
def test_statistics_are_fitted_once_on_the_warm_up_transitions(replay_features):
    agent = DQN.from_env("CartPole-v1", replay_features=replay_features, standardize_features=True,
                         **{**SETTINGS, "learning_starts": 400, "train_frequency": 1_000_000})
    agent.setup_training(4)
    env = make_env("CartPole-v1", 4, seed=3)
    obs = env.reset(seed=3)
    for step in range(4, 404, 4):
        action = torch.randint(2, (4,))
        next_obs, reward, terminated, truncated, info = env.step(action)
        agent.observe(obs, action, reward, info["final_obs"], terminated, truncated, {})
        obs = next_obs
        agent.after_step(obs, step)
        assert not bool(agent.q.standardize.fitted)
    torch.manual_seed(7)
    agent.after_step(obs, 404)  # the first step past learning_starts
    torch.manual_seed(7)
    with torch.no_grad():
        stored = agent.buffer.sample(len(agent.buffer)).obs
        features = stored if replay_features else agent.q.encoder(stored)
    fitted = agent.q.standardize.mean.clone()
    torch.testing.assert_close(fitted, features.mean(0))
    torch.testing.assert_close(agent.q.standardize.std, features.std(0, unbiased=False))
    torch.testing.assert_close(agent.q_target.standardize.mean, fitted)
    agent.after_step(obs, 408)
    torch.testing.assert_close(agent.q.standardize.mean, fitted)  # not refitted
    restored = DQN.from_env("CartPole-v1", replay_features=replay_features, standardize_features=True, **SETTINGS)
    restored.load_state_dict(agent.state_dict())
    assert bool(restored.q.standardize.fitted)
    torch.testing.assert_close(restored.q.q_values(obs), agent.q.q_values(obs))
