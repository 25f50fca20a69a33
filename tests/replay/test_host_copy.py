"""``copy_into``: the same values and dtype casts as ``destination[...] = source`` on both paths."""
import pytest
import torch

from replay import host_copy
from replay.host_copy import copy_into


@pytest.mark.parametrize("shape", [(8, 4, 84, 84), (8, 84, 84), (4, 3)], ids=["pong_stacks", "pong_frames", "small"])
def test_copy_into_matches_assignment(shape):
    generator = torch.Generator().manual_seed(0)
    source = torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
    destination = torch.zeros(2, *shape, dtype=torch.uint8)
    copy_into(destination[1], source)
    assert torch.equal(destination[1], source)
    assert not destination[0].any()


def test_serial_path_is_taken_between_torchs_parallel_grain_and_the_size_cap(monkeypatch):
    calls = []
    monkeypatch.setattr(host_copy.np, "copyto", lambda *args, **kwargs: calls.append(args[0].nbytes))
    copy_into(torch.zeros(8, 4, 84, 84, dtype=torch.uint8), torch.ones(8, 4, 84, 84, dtype=torch.uint8))
    copy_into(torch.zeros(4, 3), torch.ones(4, 3))  # torch copies this on one thread anyway
    copy_into(torch.zeros(65_536, 4), torch.ones(65_536, 4))  # 1 MB: torch's threads are faster
    assert calls == [8 * 4 * 84 * 84]


def test_serial_path_casts_and_reads_strided_sources_like_torch():
    source = torch.linspace(-3.7, 300.2, 2 * 40_000).reshape(40_000, 2).t()  # non-contiguous float32
    expected = torch.zeros(2, 40_000, dtype=torch.float64)
    expected[...] = source
    destination = torch.zeros(2, 40_000, dtype=torch.float64)
    copy_into(destination, source)
    assert torch.equal(destination, expected)
    flags = torch.rand(40_000, generator=torch.Generator().manual_seed(1)) > 0.5
    destination = torch.zeros(40_000, dtype=torch.bool)
    copy_into(destination, flags)
    assert torch.equal(destination, flags)


def test_gradient_tracking_sources_are_copied_without_their_graph():
    source = torch.rand(40_000, requires_grad=True)
    destination = torch.zeros(40_000)
    copy_into(destination, source)
    assert torch.equal(destination, source.detach()) and not destination.requires_grad
