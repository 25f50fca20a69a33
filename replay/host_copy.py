"""Row copies into host storage that leave torch's OpenMP threads idle."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from torch import Tensor

# torch splits a copy of more than this many elements over its OpenMP threads
# (``at::internal::GRAIN_SIZE``).
TORCH_PARALLEL_ELEMENTS = 32_768
# Up to this size one thread copies as fast as two: 8 stacked Pong observations (225 KB) took
# 5.7 us through numpy against torch's 5.9; at 1 MB torch's two threads win, 33 us against 57.
SERIAL_COPY_BYTES = 512 * 1024


def row_copier(storage: Tensor) -> Callable[[int, Tensor], None]:
    """``copy(t, source)`` does ``storage[t] = source``, on the calling thread alone where one
    thread copies a row of ``storage`` as fast as torch's threads would.

    After a parallel copy torch's OpenMP workers spin-wait for the next parallel region. Beside
    an env that steps on threads of its own (ale-py's ``AtariVectorEnv``) on a 2-core machine,
    that spinning took a core from the env's next step: storing a rollout of 8 Pong envs made
    each 2.0 ms step 1.2 ms slower (docs/performance.md, "Observation copies between env steps").
    The choice is made once per storage, through a numpy view of it: deciding on every copy took
    8 us of a 15 us copy of those observations.
    """
    row = storage[0]
    if (storage.device.type != "cpu" or row.numel() <= TORCH_PARALLEL_ELEMENTS
            or row.numel() * row.element_size() > SERIAL_COPY_BYTES):
        def copy(t: int, source: Tensor) -> None:
            storage[t] = source
        return copy
    rows = storage.numpy()

    def serial_copy(t: int, source: Tensor) -> None:
        if source.device.type != "cpu":
            source = source.cpu()
        np.copyto(rows[t], source.detach().numpy(), casting="unsafe")
    return serial_copy
