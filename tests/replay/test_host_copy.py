"""``row_copier``: the same values and dtype casts as ``storage[t] = source`` on both paths."""
import pytest
import torch

from replay.host_copy import row_copier


@pytest.mark.parametrize("shape", [(8, 4, 84, 84), (8, 84, 84), (4, 3), (65_536, 4)],
                         ids=["pong_stacks", "pong_frames", "small", "one_megabyte"])
def test_row_copies_match_assignment(shape):
    generator = torch.Generator().manual_seed(0)
    source = torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
    storage = torch.zeros(3, *shape, dtype=torch.uint8)
    row_copier(storage)(1, source)
    assert torch.equal(storage[1], source)
    assert not storage[0].any() and not storage[2].any()


def test_numpy_copies_every_row_up_to_the_size_cap(monkeypatch):
    copied_through_numpy = []
    to_numpy = torch.Tensor.numpy

    def numpy(tensor, force=False):
        if force:
            copied_through_numpy.append(tensor.numel())
        return to_numpy(tensor, force=force)
    monkeypatch.setattr(torch.Tensor, "numpy", numpy)
    row_copier(torch.zeros(2, 8, 4, 84, 84, dtype=torch.uint8))(1, torch.ones(8, 4, 84, 84, dtype=torch.uint8))
    row_copier(torch.zeros(2, 8))(1, torch.ones(8))
    row_copier(torch.zeros(2, 65_536, 4))(1, torch.ones(65_536, 4))  # 1 MB: torch's threads are faster
    assert copied_through_numpy == [8 * 4 * 84 * 84, 8]


@pytest.mark.parametrize("size", [8, 40_000])
def test_numpy_path_casts_and_reads_strided_sources_like_torch(size):
    source = torch.linspace(-3.7, 300.2, 2 * size).reshape(size, 2).t()  # non-contiguous float32
    expected = torch.zeros(2, 2, size, dtype=torch.float64)
    expected[1] = source
    storage = torch.zeros(2, 2, size, dtype=torch.float64)
    row_copier(storage)(1, source)
    assert torch.equal(storage, expected)
    flags = torch.rand(size, generator=torch.Generator().manual_seed(1)) > 0.5
    storage = torch.zeros(2, size, dtype=torch.bool)
    row_copier(storage)(0, flags)
    assert torch.equal(storage[0], flags) and not storage[1].any()
    storage = torch.zeros(2, size)  # booleans into floats, as ``terminated`` into a float field
    row_copier(storage)(1, flags)
    assert torch.equal(storage[1], flags.float())


def test_gradient_tracking_sources_are_copied_without_their_graph():
    source = torch.rand(8, requires_grad=True)
    storage = torch.zeros(2, 8)
    row_copier(storage)(0, source)
    assert torch.equal(storage[0], source.detach()) and not storage.requires_grad
