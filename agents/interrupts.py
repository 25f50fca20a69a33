"""Ctrl-C (or SIGTERM, as schedulers send before they kill a job) during training: stop after the
step under way, so that the checkpoint written on the way out holds a consistent state (never
half a rollout's update or half an env step)."""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """A context in which SIGINT and SIGTERM only set ``requested`` (the loop checks it once per
    step and stops there), except a second SIGINT, which raises ``KeyboardInterrupt`` at once: a
    person pressing Ctrl-C again. SIGTERM never does, so a parent process may repeat it until its
    workers stop. Outside the main thread, where Python cannot install signal handlers, both
    signals keep their usual effect."""

    def __init__(self) -> None:
        self.requested = False
        self._interrupted = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            self._previous = {number: signal.signal(number, self._handle) for number in SIGNALS}
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT:
            if self._interrupted:
                raise KeyboardInterrupt
            self._interrupted = True
        self.requested = True

    def __exit__(self, *exc_info) -> None:
        for number, previous in self._previous.items():
            # None: the previous handler was not installed from Python; the default then
            signal.signal(number, signal.SIG_DFL if previous is None else previous)


def ignore_stop_signals() -> None:
    """SIGINT and SIGTERM do nothing in this process outside a ``StopRequest`` (a pool worker
    between jobs, which its parent stops through the pool)."""
    for number in SIGNALS:
        signal.signal(number, signal.SIG_IGN)


@contextmanager
def stop_signals_ignored() -> Iterator[None]:
    """SIGINT and SIGTERM ignored within, and in the processes started within, which keep
    ignoring them (an ignored signal stays ignored across ``exec``, and Python leaves it so)."""
    previous = {number: signal.signal(number, signal.SIG_IGN) for number in SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
