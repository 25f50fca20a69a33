"""Ctrl-C during training: stop after the step under way, so that the checkpoint written on the
way out holds a consistent state (never half a rollout's update or half an env step)."""
from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any


class StopRequest:
    """A context in which the first SIGINT only sets ``requested`` (the loop checks it once per
    step and stops there); a second one raises ``KeyboardInterrupt`` at once. Outside the main
    thread, where Python cannot install signal handlers, SIGINT keeps its usual effect."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc_info) -> None:
        if self._installed:
            # None: the previous handler was not installed from Python; the default then
            signal.signal(signal.SIGINT, signal.SIG_DFL if self._previous is None else self._previous)
