"""``ReplayBuffer.trace_adds``: an add of all envs in lockstep as one function of the buffer's
tensors (what ``--compile`` compiles on the CPU) stores exactly what the eager add stores."""
import functools
import io

import gymnasium as gym
import pytest
import torch

from agents.compilation import traced_graph_options
from agents.traced_graphs import TracedGraphs
from replay.replay_buffer import ReplayBuffer
from replay_trajectories import play

ACTIONS = gym.spaces.Discrete(5)
STORAGE = ("obs_pos", "action", "reward", "terminated", "truncated", "valid_from", "episode_start", "env_steps")


def _space(stack: int) -> gym.Space:
    return gym.spaces.Box(0, 255, (stack, 3, 3), dtype="uint8")


def _as_called(function, bound):
    """The function itself, called with the buffer's tensors first: the trace's inputs, uncompiled."""
    return functools.partial(function, *bound)


def _compiled(function, bound):
    return TracedGraphs(function, traced_graph_options("default", torch.device("cpu")), bound=bound)


def _assert_same_storage(a: ReplayBuffer, b: ReplayBuffer) -> None:
    for name in STORAGE:
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert torch.equal(a.frames.frames, b.frames.frames) and torch.equal(a.frames.written, b.frames.written)
    assert a.added == b.added
    if a.tree is not None:
        assert all(torch.equal(x, y) for x, y in zip(a.tree.levels, b.tree.levels))


@pytest.mark.parametrize("stack, n_step, prioritized", [(1, 1, False), (4, 3, True), (2, 1, True)])
def test_lockstep_adds_through_the_traced_function_store_what_eager_adds_store(stack, n_step, prioritized):
    """Over more steps than the ring holds (lost transitions, episode starts after full resets
    and life losses), with samples drawn between adds."""
    kwargs = dict(frame_stack=stack, n_step=n_step, prioritized=prioritized)
    eager, traced = ReplayBuffer(60, 3, _space(stack), ACTIONS, **kwargs), ReplayBuffer(60, 3, _space(stack), ACTIONS,
                                                                                         **kwargs)
    traced.trace_adds(_as_called)
    for seed in range(3):
        play([eager, traced], steps=30, num_envs=3, stack=stack, seed=seed, p_end=0.3)
        _assert_same_storage(eager, traced)
        batches = []
        for buffer in (eager, traced):
            torch.manual_seed(seed)
            batches.append(buffer.sample(8))
        assert torch.equal(batches[0].obs, batches[1].obs) and torch.equal(batches[0].indices, batches[1].indices)


def test_a_compiled_add_stores_what_eager_adds_store_and_goes_on_after_a_restored_state():
    """Compiled by inductor, as ``--compile`` runs it; a state loaded into the buffer is written
    into its tensors in place, which the compiled add keeps reading."""
    kwargs = dict(frame_stack=4, n_step=3, prioritized=True)
    eager, compiled = ReplayBuffer(40, 2, _space(4), ACTIONS, **kwargs), ReplayBuffer(40, 2, _space(4), ACTIONS,
                                                                                       **kwargs)
    compiled.trace_adds(_compiled)
    play([eager, compiled], steps=50, num_envs=2, stack=4, seed=0, p_end=0.3)
    _assert_same_storage(eager, compiled)
    saved = io.BytesIO()
    torch.save(eager.state_dict(), saved)
    play([eager], steps=10, num_envs=2, stack=4, seed=1)
    compiled.load_state_dict(torch.load(io.BytesIO(saved.getvalue()), weights_only=True))
    play([compiled], steps=10, num_envs=2, stack=4, seed=1)
    _assert_same_storage(eager, compiled)


def test_adds_of_some_envs_go_on_eagerly():
    """An asynchronous env's adds (``env_ids``) leave lockstep: they never take the traced function."""
    calls = []

    def counted(function, bound):
        calls.append(0)
        return lambda *step: (calls.append(1), function(*bound, *step))

    buffer = ReplayBuffer(40, 2, _space(1), ACTIONS)
    buffer.trace_adds(counted)
    frames, flags = torch.zeros(2, 1, 3, 3, dtype=torch.uint8), torch.zeros(2, dtype=torch.bool)
    step = (frames, torch.zeros(2, dtype=torch.int64), torch.zeros(2), frames, flags, flags)
    buffer.add(*step)
    buffer.add(*[t[:1] for t in step], env_ids=torch.tensor([1]))
    buffer.add(*step)
    assert calls == [0, 1] and buffer.env_steps.tolist() == [2, 3]
