"""Row copies into host storage through numpy, where numpy's copy is the cheaper one."""
from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

# Up to this size one thread copies as fast as two: 8 stacked Pong observations (225 KB) took
# 5.7 us through numpy against torch's 5.9; at 1 MB torch's two threads win, 33 us against 57.
SERIAL_COPY_BYTES = 512 * 1024


def row_copier(storage: Tensor) -> Callable[[int, Tensor], None]:
    """``copy(t, source)`` does ``storage[t] = source``, through numpy on the calling thread where
    ``storage`` is on the CPU and one thread copies a row as fast as torch's threads would.

    torch splits a copy of more than 32,768 elements over its OpenMP threads, which then spin-wait
    for the next parallel region. Beside an env that steps on threads of its own (ale-py's
    ``AtariVectorEnv``) on a 2-core machine, that spinning took a core from the env's next step:
    storing a rollout of 8 Pong envs made each 2.0 ms step 1.2 ms slower (docs/performance.md,
    "Observation copies between env steps"). Small rows go through numpy too: right after an
    ale-py step every call runs some ten times slower than in a loop of its own, and numpy's
    assignment of a row of 8 values makes far fewer calls than torch's indexing and copy. The
    choice is made once per storage, through a numpy view of it: deciding on every copy took 8 us
    of a 15 us copy of those observations.
    """
    row = storage[0]
    if storage.device.type != "cpu" or row.numel() * row.element_size() > SERIAL_COPY_BYTES:
        def copy(t: int, source: Tensor) -> None:
            storage[t] = source
        return copy
    rows = storage.numpy()

    def serial_copy(t: int, source: Tensor) -> None:
        rows[t] = source.numpy(force=True)  # (detached, and first brought to the host)
    return serial_copy
