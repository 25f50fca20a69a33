"""ale-py's asynchronous mode: each env's stream is the one it has when all envs step together."""
import pytest
import torch

from envs import make_env

STEPS_PER_ENV = 120


def _action(env_id: int, t: int) -> int:
    """A fixed action sequence per env, so the two modes can be compared stream by stream."""
    return (3 * env_id + t * t) % 4


def _record(streams, first, env_ids, obs, reward, terminated, truncated, info) -> None:
    for row, env_id in enumerate(env_ids):
        if "first_obs" in info and info["first_obs"][row]:  # not returned by the reset: no step yet
            assert env_id not in first and reward[row] == 0 and info["episode_length"][row] == 0
            first[env_id] = obs[row, -1].clone()
            continue
        streams[env_id].append({
            "obs": obs[row, -1].clone(), "reward": float(reward[row]), "terminated": bool(terminated[row]),
            "truncated": bool(truncated[row]), "final_obs": info["final_obs"][row].clone(),
            "episode_done": bool(info["episode_done"][row]), "episode_return": float(info["episode_return"][row]),
            "episode_length": int(info["episode_length"][row])})


def _streams(batch_size: int, num_envs: int = 4) -> list[list[dict]]:
    # Breakout loses lives fast under these actions; 400 frames per episode adds truncations.
    env = make_env("BreakoutNoFrameskip-v4", num_envs, seed=3, clip_rewards=False, episodic_life=True,
                   max_episode_frames=400, batch_size=batch_size)
    streams = [[] for _ in range(num_envs)]
    obs = env.reset()
    env_ids = list(range(num_envs)) if env.env_ids is None else env.env_ids.tolist()
    first = {e: obs[row, -1].clone() for row, e in enumerate(env_ids)}  # each env's first observation
    while min(len(s) for s in streams) < STEPS_PER_ENV:
        action = torch.tensor([_action(e, len(streams[e])) for e in env_ids])
        obs, reward, terminated, truncated, info = env.step(action)
        env_ids = info["env_id"].tolist() if "env_id" in info else list(range(num_envs))
        _record(streams, first, env_ids, obs, reward, terminated, truncated, info)
    env.close()
    return [[{"obs": first[e]}] + stream[:STEPS_PER_ENV] for e, stream in enumerate(streams)]


def test_async_envs_follow_the_same_streams_as_lockstep_envs():
    lockstep, asynchronous = _streams(batch_size=0), _streams(batch_size=2)
    ends = sum(step.get("terminated", False) or step.get("truncated", False) for s in lockstep for step in s)
    games = sum(step.get("episode_done", False) for s in lockstep for step in s)
    assert ends > games >= 2  # life losses, truncations and whole games all happened
    life_losses = [step for s in lockstep for step in s if step.get("terminated") and not step["episode_done"]]
    assert life_losses and all(torch.equal(step["final_obs"][-1], step["obs"]) for step in life_losses)  # game goes on
    for env_id, (want, got) in enumerate(zip(lockstep, asynchronous)):
        for t, (a, b) in enumerate(zip(want, got)):
            assert a.keys() == b.keys()
            for key in a:
                same = torch.equal(a[key], b[key]) if isinstance(a[key], torch.Tensor) else a[key] == b[key]
                assert same, f"env {env_id} step {t}: {key}"


def test_async_env_reports_which_envs_it_returns():
    env = make_env("Pong", 6, seed=0, batch_size=2)
    assert (env.num_envs, env.batch_size) == (6, 2)
    obs = env.reset()
    assert obs.shape == (2, 4, 84, 84) and len(env.env_ids) == 2
    seen = set(env.env_ids.tolist())
    for _ in range(50):
        obs, reward, *_, info = env.step(torch.zeros(2, dtype=torch.int64))
        assert obs.shape[0] == reward.shape[0] == 2 and torch.equal(info["env_id"], env.env_ids)
        assert len(set(env.env_ids.tolist())) == 2
        seen |= set(env.env_ids.tolist())
    # ale-py returns the envs as they finish, so all but the last to reset take turns early on
    # (that one's first observation can come a hundred steps late)
    assert len(seen) >= 5 and seen <= set(range(6))
    env.close()
    with pytest.raises(ValueError, match="batch_size must be in"):
        make_env("Pong", 2, batch_size=3)
