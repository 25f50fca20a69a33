"""The runner's episode tally against a brute-force count of the finished episodes."""
from __future__ import annotations

import pytest
import torch

from agents.runner import _EpisodeTally


@pytest.mark.parametrize("num_seeds", [1, 3])
def test_each_seed_gets_the_mean_return_and_length_of_its_finished_episodes(num_seeds):
    rows_per_seed, generator = 4, torch.Generator().manual_seed(0)
    rows = num_seeds * rows_per_seed
    tally = _EpisodeTally(torch.device("cpu"), num_seeds)
    finished: list[list[tuple[float, int]]] = [[] for _ in range(num_seeds)]
    for step in range(60):
        # every third step finishes no episode at all; the others finish some rows' episodes
        done = torch.zeros(rows, dtype=torch.bool) if step % 3 == 0 else torch.rand(rows, generator=generator) < 0.3
        returns = torch.randn(rows, generator=generator, dtype=torch.float64) * 10
        lengths = torch.randint(1, 500, (rows,), generator=generator)
        tally.add({"episode_done": done, "episode_return": returns, "episode_length": lengths})
        for row in done.nonzero().flatten().tolist():
            finished[row // rows_per_seed].append((returns[row].item(), lengths[row].item()))
    for episodes, logged in zip(finished, tally.flush()):
        assert logged["charts/episodes"] == len(episodes) > 0
        assert logged["charts/episodic_return"] == pytest.approx(sum(r for r, _ in episodes) / len(episodes), rel=1e-12)
        assert logged["charts/episodic_length"] == pytest.approx(sum(n for _, n in episodes) / len(episodes), rel=1e-12)
    # a flush starts a new tally: steps that finish nothing leave it empty
    tally.add({"episode_done": torch.zeros(rows, dtype=torch.bool), "episode_return": torch.ones(rows, dtype=torch.float64),
               "episode_length": torch.ones(rows, dtype=torch.int64)})
    assert tally.flush() == [{} for _ in range(num_seeds)]
