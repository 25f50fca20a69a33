"""``Batch.take``: a minibatch's rows of a rollout, per group where the fields are ``[K, M, ...]``."""
from __future__ import annotations

import torch

from replay import Batch


def test_take_gathers_the_rows_of_every_set_field():
    generator = torch.Generator().manual_seed(0)
    batch = Batch(obs=torch.randn(10, 3, generator=generator), action=torch.arange(10), advantage=torch.randn(10))
    rows = torch.tensor([7, 0, 7, 3])
    taken = batch.take(rows)
    for name in ("obs", "action", "advantage"):
        expected = torch.stack([getattr(batch, name)[int(row)] for row in rows])
        assert torch.equal(getattr(taken, name), expected)
    assert taken.reward is None


def test_take_indexes_each_group_with_its_own_row_of_indices():
    generator = torch.Generator().manual_seed(1)
    batch = Batch(obs=torch.randn(3, 6, 2, generator=generator), log_prob=torch.randn(3, 6, generator=generator))
    rows = torch.tensor([[5, 1], [0, 0], [2, 4]])
    taken = batch.take(rows)
    assert taken.obs.shape == (3, 2, 2) and taken.log_prob.shape == (3, 2)
    for k in range(3):
        for j in range(2):
            assert torch.equal(taken.obs[k, j], batch.obs[k, rows[k, j]])
            assert taken.log_prob[k, j] == batch.log_prob[k, rows[k, j]]
