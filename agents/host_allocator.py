"""How a training process's C allocator treats the host tensors it frees: kept for reuse.

Batched CPU work allocates and frees tensors of a few MB several times a gradient step (16
seeds' ``[16, 256, 64]`` activations are 4 MB each). glibc's defaults hand such blocks back to
the kernel, either as their own ``mmap`` (blocks above 128 KB until a freed one raises that
threshold) or by trimming the heap once more than twice that threshold lies free at its top, so
the next step page-faults the same memory back in, one 4 KB page at a time, which costs more
than the arithmetic on it. Raising both thresholds keeps those blocks in the process: a 16-seed
PPO CartPole run (``scripts/bench.py --cases multiseed``) went from 21-24k to 24-26k steps/s.

glibc maps every block of 32 MB and more on its own whatever the threshold, so a process whose
every step allocates such blocks (a DDPM's U-Net on a batch of 84x84 frames: 231 MB for one
``[128, 64, 84, 84]`` activation) can also serve them from the heap (``large_blocks``). Six
DDPM steps on batches of 64 random ``[4, 84, 84]`` frames then took 12.3-12.5 s instead of
19.5-19.7 s (``scripts/bench.py --cases ddpm_frames_allocator``, two runs), with about a quarter
of the page faults; ``scripts/pretrain.py --method ddpm`` on 256 Pong frames, two epochs of batch
128, 31.6 s instead of 45.8 s in all.
"""
from __future__ import annotations

import ctypes
import sys

# mallopt parameters (glibc's malloc.h) and the values set.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4
MMAP_THRESHOLD = 32 << 20  # the largest glibc accepts: blocks below it come from the heap
TRIM_THRESHOLD = 256 << 20  # free memory at the heap's top kept before any is returned


def keep_freed_host_memory(large_blocks: bool = False) -> bool:
    """Sets the thresholds above for this process (glibc only); returns whether they were set.

    Blocks of 32 MB and more (replay storage) are still mapped and unmapped on their own, unless
    ``large_blocks``: then no block is mapped on its own (glibc still maps memory where the heap
    cannot grow), and freed ones stay in the heap up to the trim threshold like smaller ones."""
    if not sys.platform.startswith("linux"):
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)  # the C library the process runs on
    if mallopt is None:
        return False
    kept = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return kept and (not large_blocks or bool(mallopt(M_MMAP_MAX, 0)))
