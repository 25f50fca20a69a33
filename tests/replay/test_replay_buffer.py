import io

import gymnasium as gym
import pytest
import torch

from replay.n_step import n_step_window
from replay.replay_buffer import ReplayBuffer
from replay_trajectories import expected_transition, play, stored_frames_valid

ACTIONS = gym.spaces.Discrete(5)


def _space(stack: int) -> gym.Space:
    return gym.spaces.Box(0, 255, (stack, 3, 3), dtype="uint8")


def _sampleable(buffer: ReplayBuffer, traj, stack: int) -> set[tuple[int, int]]:
    """Brute force: row still holds it, window and next action known, frames still stored."""
    steps, n = len(traj.obs), buffer.n_step
    valid = stored_frames_valid(traj, buffer.frames.num_frames, stack)
    return {(s, e) for s in range(max(0, steps - buffer.rows), steps - n)
            for e in range(buffer.num_envs) if valid[s][e]}


def _check_batch(batch, traj, buffer, gamma):
    for i, index in enumerate(batch.indices.tolist()):
        step, env = divmod(index, buffer.num_envs)
        want = expected_transition(traj, step, env, buffer.n_step, gamma)
        assert torch.equal(batch.obs[i], want["obs"]) and torch.equal(batch.next_obs[i], want["next_obs"])
        assert batch.action[i] == want["action"]
        assert batch.reward[i].item() == pytest.approx(want["reward"], abs=1e-5)
        assert batch.terminated[i].item() == want["terminated"]
        assert batch.discount[i].item() == pytest.approx(want["discount"], rel=1e-6)
        if not want["window_ended"]:
            assert batch.next_action[i] == want["next_action"]
        elif not want["terminated"]:  # truncated: no action is taken at the final observation
            assert batch.next_action[i] == -1


@pytest.mark.parametrize("stack,n_step,prioritized", [(4, 1, False), (4, 3, False), (1, 3, False),
                                                      (4, 3, True), (1, 1, True)])
def test_samples_rebuild_exact_transitions_and_cover_exactly_the_sampleable_ones(stack, n_step, prioritized):
    gamma, num_envs = 0.9, 3
    buffer = ReplayBuffer(60, num_envs, _space(stack), ACTIONS, frame_stack=stack, n_step=n_step,
                          gamma=gamma, prioritized=prioritized)
    traj = play([buffer], steps=75, num_envs=num_envs, stack=stack, seed=stack + n_step, p_end=0.3)
    expected = _sampleable(buffer, traj, stack)
    if stack > 1:  # short episodes with 4-frame starts outran the frame slack: some were dropped
        assert len(expected) < (20 - n_step) * num_envs
    torch.manual_seed(0)
    seen = set()
    for _ in range(30):
        batch = buffer.sample(64)
        _check_batch(batch, traj, buffer, gamma)
        seen |= {divmod(i, num_envs) for i in batch.indices.tolist()}
    assert seen == expected
    stored = {(s, e) for s in range(len(traj.obs) - buffer.rows, len(traj.obs)) for e in range(num_envs)
              if stored_frames_valid(traj, buffer.frames.num_frames, stack)[s][e]}
    assert len(buffer) == len(stored)


@pytest.mark.parametrize("capacity,stack,n_step,prioritized", [(60, 4, 1, True), (60, 1, 2, True), (60, 4, 2, False),
                                                               (12, 1, 1, True)])
def test_after_every_add_exactly_the_sampleable_transitions_count(capacity, stack, n_step, prioritized):
    """Through the first overwritten frames and the first reused row (the adds before them skip
    looking for lost transitions; with 4 rows the row is reused first), the buffer's sampleable
    ranges and tree mass equal brute force after each add."""
    num_envs = 3
    for steps in range(1, 40):
        buffer = ReplayBuffer(capacity, num_envs, _space(stack), ACTIONS, frame_stack=stack, n_step=n_step,
                              prioritized=prioritized)
        traj = play([buffer], steps=steps, num_envs=num_envs, stack=stack, seed=11, p_end=0.4)
        ranges = zip(buffer.valid_from.tolist(), buffer.env_steps.tolist())
        counted = {(s, e) for e, (first, end) in enumerate(ranges) for s in range(first, end - n_step)}
        assert counted == _sampleable(buffer, traj, stack), steps
        if prioritized:
            mass = buffer.tree.get(torch.arange(buffer.rows * num_envs)).view(buffer.rows, num_envs)
            assert {(s, e) for s, e in counted if mass[s % buffer.rows, e] > 0} == counted, steps
            assert int((mass > 0).sum()) == len(counted), steps


def test_prioritized_mass_weights_and_updates():
    buffer = ReplayBuffer(80, 2, _space(4), ACTIONS, frame_stack=4, n_step=2, prioritized=True,
                          alpha=0.5, priority_eps=0.01)
    traj = play([buffer], steps=70, num_envs=2, stack=4, seed=5, p_end=0.2)
    expected = _sampleable(buffer, traj, 4)
    leaves = buffer.tree.get(torch.arange(buffer.rows * 2))
    positive = {(s, e) for s, e in expected if leaves[(s % buffer.rows) * 2 + e] > 0}
    assert positive == expected and int((leaves > 0).sum()) == len(expected)
    assert torch.all(leaves[leaves > 0] == 1.0)  # everything entered at the initial max priority

    torch.manual_seed(1)
    batch = buffer.sample(16)
    buffer.update_priorities(batch.indices, torch.linspace(-3.0, 3.0, 16))
    slots = (batch.indices // 2 % buffer.rows) * 2 + batch.indices % 2
    new = (torch.linspace(-3.0, 3.0, 16).double().abs() + 0.01) ** 0.5
    last_write = {int(s): v for s, v in zip(slots, new)}  # duplicates: the tree keeps one of them
    for s, v in last_write.items():
        assert buffer.tree.get(torch.tensor([s])).item() in set(new[slots == s].tolist())
    assert buffer.max_priority.item() == pytest.approx(float(new.max()))

    batch = buffer.sample(32, beta=0.7)
    slots = (batch.indices // 2 % buffer.rows) * 2 + batch.indices % 2
    probs = buffer.tree.get(slots) / buffer.tree.get(torch.arange(buffer.rows * 2)).sum()
    raw = (len(expected) * probs) ** -0.7
    torch.testing.assert_close(batch.weights, (raw / raw.max()).float())

    buffer.update_priorities(torch.tensor([0]), torch.tensor([100.0]))  # step 0: long overwritten
    assert buffer.tree.get(torch.tensor([0])).item() in (0.0, 1.0, *new.tolist())
    assert buffer.max_priority.item() == pytest.approx(float(new.max()))


def test_uniform_weights_are_ones_and_updates_are_no_ops():
    buffer = ReplayBuffer(40, 2, _space(4), ACTIONS, frame_stack=4)
    play([buffer], steps=10, num_envs=2, stack=4, seed=0)
    batch = buffer.sample(8)
    assert torch.equal(batch.weights, torch.ones(8))
    buffer.update_priorities(batch.indices, torch.ones(8))  # must not raise


@pytest.mark.parametrize("prioritized", [False, True])
def test_state_dict_round_trip_continues_bit_for_bit(prioritized):
    kwargs = dict(frame_stack=4, n_step=3, prioritized=prioritized)
    a = ReplayBuffer(50, 2, _space(4), ACTIONS, **kwargs)
    play([a], steps=40, num_envs=2, stack=4, seed=0)
    saved = io.BytesIO()
    torch.save(a.state_dict(), saved)
    b = ReplayBuffer(50, 2, _space(4), ACTIONS, **kwargs)
    b.load_state_dict(torch.load(io.BytesIO(saved.getvalue()), weights_only=True))
    play([a, b], steps=30, num_envs=2, stack=4, seed=1)
    for _ in range(3):
        batches = []
        for buffer in (a, b):
            torch.manual_seed(7)
            batches.append(buffer.sample(16))
            buffer.update_priorities(batches[-1].indices, torch.arange(16.0))
        for name in ("obs", "action", "reward", "next_obs", "terminated", "discount", "weights", "indices"):
            assert torch.equal(getattr(batches[0], name), getattr(batches[1], name)), name


@pytest.mark.parametrize("prioritized", [False, True])
def test_cut_episodes_ends_every_window_and_stores_the_fresh_observation_whole(prioritized):
    """After a resume whose envs start fresh episodes, the transitions are those of one trajectory
    whose every env was truncated at the cut: no window, stack or bootstrap crosses it."""
    gamma, stack = 0.9, 4
    buffer = ReplayBuffer(90, 3, _space(stack), ACTIONS, frame_stack=stack, n_step=3, gamma=gamma,
                          prioritized=prioritized)
    before = play([buffer], steps=20, num_envs=3, stack=stack, seed=5, p_end=0.05)
    buffer.cut_episodes()
    after = play([buffer], steps=12, num_envs=3, stack=stack, seed=6, p_end=0.05)
    before.truncated[-1] = before.truncated[-1] | ~before.terminated[-1]
    traj = before
    for name in ("obs", "action", "reward", "next_obs", "terminated", "truncated"):
        getattr(traj, name).extend(getattr(after, name))
    torch.manual_seed(0)
    seen = set()
    for _ in range(20):
        batch = buffer.sample(64)
        _check_batch(batch, traj, buffer, gamma)
        seen |= {divmod(i, 3) for i in batch.indices.tolist()}
    assert seen == _sampleable(buffer, traj, stack)
    assert {17, 19, 20} <= {step for step, _ in seen}  # windows ending at, and starting after, the cut


def test_n_step_window_against_hand_made_windows():
    reward = torch.tensor([[1.0, 2.0, 4.0], [1.0, 2.0, 4.0], [1.0, 2.0, 4.0], [1.0, 2.0, 4.0]])
    terminated = torch.tensor([[False, False, False], [False, True, False], [False, False, False],
                               [True, False, True]])
    truncated = torch.tensor([[False, False, False], [False, False, False], [False, True, False],
                              [False, True, False]])
    out = n_step_window(reward, terminated, truncated, 0.5)
    torch.testing.assert_close(out.reward, torch.tensor([3.0, 2.0, 2.0, 1.0]))
    assert out.length.tolist() == [3, 2, 2, 1]
    assert out.terminated.tolist() == [0.0, 1.0, 0.0, 1.0]
    torch.testing.assert_close(out.discount, torch.tensor([0.125, 0.25, 0.25, 0.5]))


def test_one_step_windows_hold_the_values_the_general_case_gives_bit_for_bit():
    reward = torch.randn(6, 2, generator=torch.Generator().manual_seed(0))
    terminated = torch.tensor([[True, False], [False, False]] * 3)
    truncated = ~terminated  # every first step ends its episode, so a 2-step window keeps only it
    general = n_step_window(reward, terminated, truncated, 0.99)
    one_step = n_step_window(reward[:, :1], terminated[:, :1], truncated[:, :1], 0.99)
    for ours, theirs in zip(one_step, general):
        assert ours.dtype == theirs.dtype and torch.equal(ours, theirs)
    assert one_step.terminated.tolist() == [1.0, 0.0] * 3 and torch.equal(one_step.reward, reward[:, 0])


def test_memory_of_a_million_atari_transitions():
    atari = gym.spaces.Box(0, 255, (4, 84, 84), dtype="uint8")
    nbytes = ReplayBuffer.estimate_nbytes(1_000_000, atari, ACTIONS, frame_stack=4)
    assert 7.0e9 <= nbytes <= 7.3e9
    rainbow = ReplayBuffer.estimate_nbytes(1_000_000, atari, ACTIONS, frame_stack=4, n_step=3, prioritized=True)
    assert nbytes < rainbow < nbytes + 1e7  # n-step costs nothing stored; the sum-tree about 8 MB
    small = ReplayBuffer(300, 1, atari, ACTIONS, frame_stack=4, n_step=3, prioritized=True)
    assert small.nbytes == ReplayBuffer.estimate_nbytes(300, atari, ACTIONS, 4, 3, True)


def test_bad_input():
    with pytest.raises(ValueError):
        ReplayBuffer(4, 2, _space(4), ACTIONS, frame_stack=4, n_step=3)
    with pytest.raises(ValueError):
        ReplayBuffer(40, 2, _space(4), ACTIONS, frame_stack=3)
    buffer = ReplayBuffer(40, 2, _space(4), ACTIONS, frame_stack=4)
    with pytest.raises(ValueError):
        buffer.sample(4)
    with pytest.raises(ValueError):
        buffer.add(torch.zeros(3, 4, 3, 3, dtype=torch.uint8), torch.zeros(3, dtype=torch.long),
                   torch.zeros(3), torch.zeros(3, 4, 3, 3, dtype=torch.uint8),
                   torch.zeros(3, dtype=torch.bool), torch.zeros(3, dtype=torch.bool))
