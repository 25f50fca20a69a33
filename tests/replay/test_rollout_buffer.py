import io

import gymnasium as gym
import pytest
import torch

from replay.gae import generalized_advantages
from replay.rollout_buffer import RolloutBuffer

OBS = gym.spaces.Box(-1, 1, (3,), dtype="float32")
ACTIONS = gym.spaces.Discrete(2)


def _fill(buffer: RolloutBuffer, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    T, N = buffer.num_steps, buffer.num_envs
    data = {"obs": torch.randn(T, N, 3, generator=gen), "action": torch.randint(2, (T, N), generator=gen),
            "log_prob": torch.randn(T, N, generator=gen), "value": torch.randn(T, N, generator=gen),
            "reward": torch.randn(T, N, generator=gen), "terminated": torch.rand(T, N, generator=gen) < 0.2,
            "truncated": torch.rand(T, N, generator=gen) < 0.2, "final_value": torch.randn(T, N, generator=gen),
            "next_obs": torch.randn(T, N, 3, generator=gen)}
    for t in range(T):
        buffer.add(**{k: v[t] for k, v in data.items() if k != "next_obs" or buffer.store_next_obs})
    return data


def test_finish_computes_gae_and_minibatches_cover_every_step_each_epoch():
    buffer = RolloutBuffer(6, 4, OBS, ACTIONS, store_next_obs=True)
    data = _fill(buffer, 0)
    last = torch.randn(4)
    buffer.finish(last, 0.9, 0.8)
    expected = generalized_advantages(data["reward"], data["value"], data["terminated"], data["truncated"],
                                      last, data["final_value"], 0.9, 0.8)
    torch.testing.assert_close(buffer.advantages, expected)
    torch.testing.assert_close(buffer.returns, expected + data["value"])
    batches = list(buffer.minibatches(5, epochs=2, generator=torch.Generator().manual_seed(0)))
    assert len(batches) == 10 and sorted(len(b.obs) for b in batches[:5]) == [4, 5, 5, 5, 5]
    for epoch in (batches[:5], batches[5:]):
        log_probs = torch.cat([b.log_prob for b in epoch])
        assert sorted(log_probs.tolist()) == sorted(data["log_prob"].flatten().tolist())
        for b in epoch:  # every field of a row comes from the same step
            pos = [(data["log_prob"].flatten() == lp).nonzero().item() for lp in b.log_prob]
            assert torch.equal(b.obs, data["obs"].flatten(0, 1)[pos])
            assert torch.equal(b.next_obs, data["next_obs"].flatten(0, 1)[pos])
            assert torch.equal(b.advantage, expected.flatten()[pos])
            assert torch.equal(b.terminated, data["terminated"].flatten()[pos].float())
    assert not torch.equal(torch.cat([b.log_prob for b in batches[:5]]),
                           torch.cat([b.log_prob for b in batches[5:]]))  # reshuffled
    again = list(buffer.minibatches(5, epochs=2, generator=torch.Generator().manual_seed(0)))
    assert all(torch.equal(x.obs, y.obs) for x, y in zip(batches, again))


def test_one_minibatch_is_the_whole_rollout_in_storage_order_without_a_draw():
    buffer = RolloutBuffer(6, 4, OBS, ACTIONS)
    data = _fill(buffer, 0)
    buffer.finish(torch.randn(4), 0.9, 0.8)
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    batches = list(buffer.minibatches(1, epochs=3, generator=generator))
    assert len(batches) == 3 and torch.equal(generator.get_state(), state)
    whole = buffer.whole_rollout()
    for batch in batches:
        assert torch.equal(batch.obs, data["obs"].flatten(0, 1))
        assert all(torch.equal(getattr(batch, name), getattr(whole, name)) for name in buffer.fields())


def test_truncation_without_final_value_is_refused_and_the_buffer_restarts_after_finish():
    buffer = RolloutBuffer(2, 1, OBS, ACTIONS)
    args = (torch.zeros(1, 3), torch.zeros(1, dtype=torch.long), torch.zeros(1), torch.zeros(1), torch.ones(1))
    buffer.add(*args, torch.tensor([False]), torch.tensor([True]))
    buffer.add(*args, torch.tensor([False]), torch.tensor([False]))
    with pytest.raises(ValueError):
        buffer.add(*args, torch.tensor([False]), torch.tensor([False]))
    with pytest.raises(ValueError):
        buffer.finish(torch.zeros(1), 0.9, 0.9)
    buffer.reset()
    buffer.add(*args, torch.tensor([False]), torch.tensor([True]), final_value=torch.tensor([2.0]))
    buffer.add(*args, torch.tensor([True]), torch.tensor([False]))
    buffer.finish(torch.tensor([5.0]), 0.5, 1.0)
    torch.testing.assert_close(buffer.returns[:, 0], torch.tensor([2.0, 1.0]))  # 1 + 0.5 * 2; 1
    buffer.add(*args, torch.tensor([False]), torch.tensor([False]))  # starts the next rollout
    assert buffer.step == 1


def test_a_final_value_given_in_one_rollout_is_not_read_in_the_next():
    buffer = RolloutBuffer(1, 1, OBS, ACTIONS)
    args = (torch.zeros(1, 3), torch.zeros(1, dtype=torch.long), torch.zeros(1), torch.zeros(1), torch.ones(1))
    buffer.add(*args, torch.tensor([False]), torch.tensor([True]), final_value=torch.tensor([2.0]))
    buffer.finish(torch.zeros(1), 0.5, 1.0)
    buffer.add(*args, torch.tensor([False]), torch.tensor([True]))  # truncated again, no value given
    with pytest.raises(ValueError, match="truncated without final_value"):
        buffer.finish(torch.zeros(1), 0.5, 1.0)


def test_state_dict_round_trip():
    a = RolloutBuffer(4, 2, OBS, ACTIONS)
    _fill(a, 1)
    a.finish(torch.zeros(2), 0.99, 0.95)
    saved = io.BytesIO()
    torch.save(a.state_dict(), saved)
    b = RolloutBuffer(4, 2, OBS, ACTIONS)
    b.load_state_dict(torch.load(io.BytesIO(saved.getvalue()), weights_only=True))
    for x, y in zip(a.minibatches(2, 1, torch.Generator().manual_seed(3)),
                    b.minibatches(2, 1, torch.Generator().manual_seed(3))):
        assert torch.equal(x.obs, y.obs) and torch.equal(x.advantage, y.advantage)
