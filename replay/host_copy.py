"""Copies into host storage that leave torch's OpenMP threads idle."""
from __future__ import annotations

import numpy as np
from torch import Tensor

# torch splits a copy of more than this many elements over its OpenMP threads
# (``at::internal::GRAIN_SIZE``).
TORCH_PARALLEL_ELEMENTS = 32_768
# Up to this size one thread copies as fast as two: 8 stacked Pong observations (225 KB) took
# 5.7 us through numpy against torch's 5.9; at 1 MB torch's two threads win, 33 us against 57.
SERIAL_COPY_BYTES = 512 * 1024


def copy_into(destination: Tensor, source: Tensor) -> None:
    """``destination[...] = source``, on the calling thread alone where one thread is as fast.

    After a parallel copy torch's OpenMP workers spin-wait for the next parallel region. Beside
    an env that steps on threads of its own (ale-py's ``AtariVectorEnv``) on a 2-core machine,
    that spinning took a core from the env's next step: storing a rollout of 8 Pong envs made
    each 2.0 ms step 1.2 ms slower (docs/performance.md, "Observation copies between env steps").
    """
    if (destination.device.type == "cpu" and source.device.type == "cpu"
            and TORCH_PARALLEL_ELEMENTS < destination.numel()
            and destination.numel() * destination.element_size() <= SERIAL_COPY_BYTES):
        np.copyto(destination.numpy(), source.detach().numpy(), casting="unsafe")
    else:
        destination.copy_(source)
