"""The allocator setting of training processes: freed multi-MB host tensors are reused, not
handed back to the kernel and page-faulted in again."""
from __future__ import annotations

import resource
import subprocess
import sys

import pytest
import torch

from agents.host_allocator import keep_freed_host_memory


def minor_page_faults_of_a_round(count: int = 20, numel: int = 1 << 20) -> int:
    """Page faults while ``count`` 4 MB tensors are allocated, written and freed together."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    tensors = [torch.ones(numel) for _ in range(count)]
    del tensors
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a glibc setting")
def test_freed_tensors_are_reused_without_page_faults():
    assert keep_freed_host_memory()
    minor_page_faults_of_a_round()  # the heap grows once
    # 80 MB freed at once: glibc's default trims it and faults all 20,480 pages in again the next
    # round (20,431 measured); kept, the next round faults in at most a block or two (0-1,024).
    assert minor_page_faults_of_a_round() < 20 * (4 << 20) // resource.getpagesize() // 4


LARGE_BLOCK_ROUNDS = """
import resource, sys, torch
from agents.host_allocator import keep_freed_host_memory
assert keep_freed_host_memory(large_blocks=sys.argv[1] == "large")
faults = []
for _ in range(5):  # three 64 MB tensors allocated, written and freed together
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    tensors = [torch.ones(16 << 20) for _ in range(3)]
    del tensors
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(faults[-1])
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a glibc setting")
def test_large_blocks_are_reused_too_when_asked():
    """Blocks of 32 MB and more are mapped on their own and faulted in at every allocation by
    default; with ``large_blocks`` they come from the heap and are reused. (In a child process:
    the setting is for the whole process.)"""
    def faults(mode: str) -> int:
        return int(subprocess.run([sys.executable, "-c", LARGE_BLOCK_ROUNDS, mode], capture_output=True, text=True,
                                  check=True).stdout)
    pages = 3 * (64 << 20) // resource.getpagesize()
    assert faults("default") >= pages // 2  # each round faults in most of its 49,152 pages again
    # the heap settles within three rounds (one more block's 16,384 pages at most); the fifth faults none
    assert faults("large") < pages // 8
