"""Test-wide settings: deterministic, single-threaded torch so learning tests are repeatable."""
import os

import pytest
import torch

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # rendering for --capture-video needs no display


@pytest.fixture(autouse=True)
def _single_thread_torch():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
