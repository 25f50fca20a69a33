"""``row_copier``: the same values and dtype casts as ``storage[t] = source`` on both paths."""
import pytest
import torch

from replay import host_copy
from replay.host_copy import row_copier


@pytest.mark.parametrize("shape", [(8, 4, 84, 84), (8, 84, 84), (4, 3)], ids=["pong_stacks", "pong_frames", "small"])
def test_row_copies_match_assignment(shape):
    generator = torch.Generator().manual_seed(0)
    source = torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
    storage = torch.zeros(3, *shape, dtype=torch.uint8)
    row_copier(storage)(1, source)
    assert torch.equal(storage[1], source)
    assert not storage[0].any() and not storage[2].any()


def test_serial_path_is_taken_between_torchs_parallel_grain_and_the_size_cap(monkeypatch):
    calls = []
    monkeypatch.setattr(host_copy.np, "copyto", lambda *args, **kwargs: calls.append(args[0].nbytes))
    row_copier(torch.zeros(2, 8, 4, 84, 84, dtype=torch.uint8))(1, torch.ones(8, 4, 84, 84, dtype=torch.uint8))
    row_copier(torch.zeros(2, 4, 3))(1, torch.ones(4, 3))  # torch copies this on one thread anyway
    row_copier(torch.zeros(2, 65_536, 4))(1, torch.ones(65_536, 4))  # 1 MB: torch's threads are faster
    assert calls == [8 * 4 * 84 * 84]


def test_serial_path_casts_and_reads_strided_sources_like_torch():
    source = torch.linspace(-3.7, 300.2, 2 * 40_000).reshape(40_000, 2).t()  # non-contiguous float32
    expected = torch.zeros(2, 2, 40_000, dtype=torch.float64)
    expected[1] = source
    storage = torch.zeros(2, 2, 40_000, dtype=torch.float64)
    row_copier(storage)(1, source)
    assert torch.equal(storage, expected)
    flags = torch.rand(40_000, generator=torch.Generator().manual_seed(1)) > 0.5
    storage = torch.zeros(2, 40_000, dtype=torch.bool)
    row_copier(storage)(0, flags)
    assert torch.equal(storage[0], flags) and not storage[1].any()


def test_gradient_tracking_sources_are_copied_without_their_graph():
    source = torch.rand(40_000, requires_grad=True)
    storage = torch.zeros(2, 40_000)
    row_copier(storage)(0, source)
    assert torch.equal(storage[0], source.detach()) and not storage.requires_grad
