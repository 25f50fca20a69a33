"""The allocator setting of training processes: freed multi-MB host tensors are reused, not
handed back to the kernel and page-faulted in again."""
from __future__ import annotations

import resource
import subprocess
import sys

import pytest


# Rounds in a fresh child process (the setting is for the whole process, and a process that ran
# other code first has a heap of its own shape): ``count`` tensors of ``numel`` floats allocated,
# written and freed together each round; prints the last round's minor page faults.
ROUNDS = """
import resource, sys, torch
from agents.host_allocator import keep_freed_host_memory
mode, rounds, count, numel = sys.argv[1], *map(int, sys.argv[2:])
if mode != "default":
    assert keep_freed_host_memory(large_blocks=mode == "large")
for _ in range(rounds):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    tensors = [torch.ones(numel) for _ in range(count)]
    del tensors
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(faults)
"""


def faults_of_the_last_round(mode: str, rounds: int, count: int, numel: int) -> int:
    """``mode``: ``default`` (glibc's own settings), ``kept`` or ``large`` (``keep_freed_host_memory``)."""
    return int(subprocess.run([sys.executable, "-c", ROUNDS, mode, str(rounds), str(count), str(numel)],
                              capture_output=True, text=True, check=True).stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a glibc setting")
def test_freed_tensors_are_reused_without_page_faults():
    pages = 20 * (4 << 20) // resource.getpagesize()
    # 80 MB freed at once: glibc's default trims it and faults all 20,480 pages in again the next
    # round (20,431 measured; its thresholds rise over later rounds); kept, the next round faults in
    # at most a block or two (0-1,024).
    assert faults_of_the_last_round("default", 2, 20, 1 << 20) >= pages // 2
    assert faults_of_the_last_round("kept", 2, 20, 1 << 20) < pages // 4


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a glibc setting")
def test_large_blocks_are_reused_too_when_asked():
    """Blocks of 32 MB and more are mapped on their own and faulted in at every allocation by
    default; with ``large_blocks`` they come from the heap and are reused. (In a child process:
    the setting is for the whole process.)"""
    pages = 3 * (64 << 20) // resource.getpagesize()  # three 64 MB tensors a round
    assert faults_of_the_last_round("default", 5, 3, 16 << 20) >= pages // 2  # most of 49,152 pages again
    # the heap settles within three rounds (one more block's 16,384 pages at most); the fifth faults none
    assert faults_of_the_last_round("large", 5, 3, 16 << 20) < pages // 8
