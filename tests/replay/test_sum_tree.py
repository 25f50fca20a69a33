import numpy as np
import pytest
import torch

from replay.sum_tree import BRANCHING, SumTree, _NumpyOps


def _filled(size: int, backend: str, seed: int = 0) -> tuple[SumTree, torch.Tensor]:
    """Integer priorities (30% zeros): every sum is exact in float64, so search results are too."""
    gen = torch.Generator().manual_seed(seed)
    values = torch.randint(0, 10, (size,), generator=gen).double()
    values[torch.rand(size, generator=gen) < 0.3] = 0.0
    tree = SumTree(size, backend=backend)
    tree.update(torch.arange(size), values)
    return tree, values


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("size", [1, 7, 1024, 1025, 40_000])
def test_totals_and_prefix_search_match_brute_force_after_random_updates(backend, size):
    tree, values = _filled(size, backend)
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        idx = torch.randperm(size, generator=gen)[:64]
        new = torch.randint(0, 10, (len(idx),), generator=gen).double()
        tree.update(idx, new)
        values[idx] = new
        assert tree.total == float(values.sum())
    values[0] = max(float(values[0]), 1.0)  # keep some mass for the search
    tree.update(torch.tensor([0]), values[:1])
    prefix = np.cumsum(values.numpy())
    targets = torch.rand(3000, generator=gen, dtype=torch.float64) * tree.total
    targets[:5] = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0], dtype=torch.float64).clamp(max=tree.total / 2)
    expected = np.searchsorted(prefix, targets.numpy(), side="right")
    assert tree.find(targets).tolist() == expected.tolist()


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_zero_leaves_are_never_found_even_at_the_edges(backend):
    values = torch.zeros(5000, dtype=torch.float64)
    values[[3, 1100, 4999]] = torch.tensor([1e-300, 2.0, 3.0], dtype=torch.float64)
    tree = SumTree(5000, backend=backend)
    tree.update(torch.arange(5000), values)
    targets = torch.tensor([-1.0, 0.0, 1e-300, 2.0, 4.9999999999, 5.0, 7.0], dtype=torch.float64)
    assert tree.find(targets).tolist() == [3, 3, 1100, 4999, 4999, 4999, 4999]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_sampling_frequencies_match_priorities_chi_square(backend):
    size = 2000
    priorities = torch.zeros(size, dtype=torch.float64)
    chosen = torch.arange(0, size, 100)  # 20 leaves with mass, the rest zero
    priorities[chosen] = torch.arange(1, 21, dtype=torch.float64)
    tree = SumTree(size, backend=backend)
    tree.update(torch.arange(size), priorities)
    gen = torch.Generator().manual_seed(0)
    draws = torch.cat([tree.sample(500, gen) for _ in range(40)])
    counts = torch.bincount(draws, minlength=size).double()
    assert counts.sum() == 20_000 and counts[priorities == 0].sum() == 0
    expected = priorities[chosen] / priorities.sum() * 20_000
    chi2 = float(((counts[chosen] - expected) ** 2 / expected).sum())
    assert chi2 < 43.8  # 99.9% quantile of chi-square with 19 degrees of freedom


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_sampling_is_stratified_one_draw_per_segment(backend):
    tree = SumTree(64, backend=backend)
    tree.update(torch.arange(64), torch.ones(64, dtype=torch.float64))
    gen = torch.Generator().manual_seed(3)
    for _ in range(20):  # 8 equal segments of 8 leaves: draw i lies in segment i
        assert (tree.sample(8, gen) // 8).tolist() == list(range(8))


def test_cpu_running_sums_never_decrease_and_repeat_at_zero_children():
    """The property the CPU descent relies on instead of a positivity mask, checked on this BLAS:
    along a row the running sums never decrease, and a zero child's equals its left neighbour's."""
    rng = np.random.default_rng(0)
    rows = rng.random((20_000, BRANCHING)) * 10.0 ** rng.integers(-300, 300, (20_000, BRANCHING))
    rows[rng.random(rows.shape) < 0.5] = 0.0
    for batch in (1, 7, 32, 256, 20_000):  # the BLAS may pick another kernel per size
        part = rows[:batch]
        running = _NumpyOps.running_sums(part)
        assert (np.diff(running, axis=1) >= 0).all()
        assert (running[:, 1:] == running[:, :-1])[part[:, 1:] == 0].all()
        assert (running[:, 0] == part[:, 0]).all()


def test_backends_agree_and_state_dict_round_trips():
    a, _ = _filled(3000, "numpy")
    b, _ = _filled(3000, "torch")
    u = torch.rand(500, dtype=torch.float64) * a.total
    assert torch.equal(a.find(u), b.find(u))
    c = SumTree(3000)
    c.load_state_dict(a.state_dict())
    assert torch.equal(c.find(u), a.find(u)) and c.total == a.total


def test_bad_input():
    with pytest.raises(ValueError):
        SumTree(0)
    with pytest.raises(ValueError):
        SumTree(10).sample(4)
