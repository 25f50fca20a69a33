"""Adds of some envs at a time (an asynchronous env returns whichever envs are ready): each env's
stream must be stored exactly as if all envs had been added together."""
import gymnasium as gym
import pytest
import torch

from replay.replay_buffer import ReplayBuffer
from replay_trajectories import Trajectory, expected_transition, play, stored_frames_valid

ACTIONS = gym.spaces.Discrete(5)
FIELDS = ("obs", "action", "reward", "next_obs", "terminated", "truncated")


def _buffer(stack: int, n_step: int, prioritized: bool, num_envs: int = 4) -> ReplayBuffer:
    return ReplayBuffer(80, num_envs, gym.spaces.Box(0, 255, (stack, 3, 3), dtype="uint8"), ACTIONS,
                        frame_stack=stack, n_step=n_step, gamma=0.9, prioritized=prioritized)


def add_out_of_step(buffer: ReplayBuffer, traj: Trajectory, counts: list[int], adds: int, batch: int,
                    gen: torch.Generator) -> None:
    """Up to ``adds`` adds, each of ``batch`` distinct envs (fewer once most are at the end of
    ``traj``) in random order, higher env ids more often, every env going on with its own next
    step of ``traj``; ``counts`` tracks each env's steps."""
    for _ in range(adds):
        weights = torch.tensor([(1.0 + e) * (c < len(traj.obs)) for e, c in enumerate(counts)])
        if not weights.any():
            return
        envs = torch.multinomial(weights, min(batch, int((weights > 0).sum())), generator=gen)
        rows = [getattr(traj, name) for name in FIELDS]
        buffer.add(*(torch.stack([field[counts[e]][e] for e in envs.tolist()]) for field in rows), env_ids=envs)
        for e in envs.tolist():
            counts[e] += 1


def _stored(buffer: ReplayBuffer, traj: Trajectory, counts: list[int], stack: int,
            lag: int = 0) -> set[tuple[int, int]]:
    """Brute force per env: the steps whose row still holds them and whose frames are still stored
    (judged on that env's own prefix of the trajectory), but the last ``lag``."""
    expected = set()
    for env, count in enumerate(counts):
        prefix = Trajectory(*(getattr(traj, name)[:count] for name in FIELDS))
        valid = stored_frames_valid(prefix, buffer.frames.num_frames, stack) if count else []
        expected |= {(s, env) for s in range(max(0, count - buffer.rows), count - lag) if valid[s][env]}
    return expected


@pytest.mark.parametrize("stack,n_step,prioritized", [(4, 3, False), (4, 1, True), (1, 3, True)])
def test_out_of_step_adds_store_what_adding_all_envs_together_stores(stack, n_step, prioritized):
    together, apart = _buffer(stack, n_step, prioritized), _buffer(stack, n_step, prioritized)
    traj = play([together], steps=50, num_envs=4, stack=stack, seed=3, p_end=0.2)
    counts = [0] * 4
    add_out_of_step(apart, traj, counts, adds=1000, batch=2, gen=torch.Generator().manual_seed(0))
    assert counts == [50] * 4
    _assert_equal(together.state_dict(), apart.state_dict(), "buffer")
    assert apart.added == 200


def _assert_equal(want, got, name: str) -> None:
    """Nested state dicts (the frame store's, the sum tree's levels) equal to the bit."""
    assert type(want) is type(got), name
    if isinstance(want, dict):
        assert want.keys() == got.keys(), name
        for key in want:
            _assert_equal(want[key], got[key], f"{name}.{key}")
    elif isinstance(want, list):
        for i, (a, b) in enumerate(zip(want, got, strict=True)):
            _assert_equal(a, b, f"{name}[{i}]")
    else:
        assert torch.equal(want, got) if isinstance(want, torch.Tensor) else want == got, name


@pytest.mark.parametrize("stack,n_step,prioritized", [(4, 3, False), (4, 1, True), (1, 2, False)])
def test_envs_at_different_step_counts_sample_exactly_their_own_sampleable_transitions(stack, n_step, prioritized):
    """Midway through, the envs have taken very different numbers of steps (the busiest has
    wrapped around the ring, the idlest has not filled a window)."""
    buffer = _buffer(stack, n_step, prioritized)
    gamma = buffer.gamma
    traj = play([], steps=120, num_envs=4, stack=stack, seed=stack + n_step, p_end=0.2)
    counts = [0] * 4
    add_out_of_step(buffer, traj, counts, adds=60, batch=2, gen=torch.Generator().manual_seed(1))
    assert max(counts) > buffer.rows and min(counts) < max(counts) // 2
    expected = _stored(buffer, traj, counts, stack, lag=n_step)  # n-step windows and next actions known
    torch.manual_seed(0)
    seen = set()
    for _ in range(40):
        batch = buffer.sample(64)
        for i, index in enumerate(batch.indices.tolist()):
            step, env = divmod(index, buffer.num_envs)
            want = expected_transition(traj, step, env, n_step, gamma)
            assert torch.equal(batch.obs[i], want["obs"]) and torch.equal(batch.next_obs[i], want["next_obs"])
            assert batch.action[i] == want["action"]
            assert batch.reward[i].item() == pytest.approx(want["reward"], abs=1e-5)
            assert batch.discount[i].item() == pytest.approx(want["discount"], rel=1e-6)
        buffer.update_priorities(batch.indices, torch.rand(64))
        seen |= {divmod(i, buffer.num_envs) for i in batch.indices.tolist()}
    assert seen == expected
    assert len(buffer) == len(_stored(buffer, traj, counts, stack))


def test_sampling_starts_as_soon_as_any_env_completes_a_window():
    buffer = _buffer(stack=1, n_step=3, prioritized=False)
    traj = play([], steps=5, num_envs=4, stack=1, seed=0, p_end=0.0)
    only_env_2 = torch.tensor([2])
    for step in range(4):
        if step == 3:
            with pytest.raises(ValueError, match="nothing sampleable in 3 transitions"):
                buffer.sample(8)
        buffer.add(*(getattr(traj, name)[step][only_env_2] for name in FIELDS), env_ids=only_env_2)
    batch = buffer.sample(8)
    assert batch.indices.tolist() == [0 * 4 + 2] * 8
    assert torch.equal(batch.obs, traj.obs[0][[2] * 8])


def test_adds_of_all_envs_after_restoring_envs_at_different_steps_go_to_each_envs_own_row():
    """A checkpoint taken with envs at different step counts, then adds of all envs together: the
    restored buffer stores exactly what the uninterrupted one does."""
    traj = play([], steps=60, num_envs=4, stack=4, seed=8, p_end=0.2)
    uninterrupted, counts = _buffer(4, 2, True), [0] * 4
    add_out_of_step(uninterrupted, traj, counts, adds=40, batch=2, gen=torch.Generator().manual_seed(1))
    assert len(set(counts)) > 1
    restored = _buffer(4, 2, True)
    restored.load_state_dict(uninterrupted.state_dict())
    for buffer in (uninterrupted, restored):
        for k in range(15):  # all envs together, each going on with its own next step
            buffer.add(*(torch.stack([getattr(traj, name)[c + k][e] for e, c in enumerate(counts)])
                         for name in FIELDS))
    _assert_equal(uninterrupted.state_dict(), restored.state_dict(), "buffer")
