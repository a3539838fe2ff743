"""Ctrl-C and SIGTERM as requests: the loop finishes its step, saves and stops; a second Ctrl-C stops at once."""
from __future__ import annotations

import signal
import threading
from types import FrameType


class StopRequests:
    """A context in which SIGINT/SIGTERM set ``requested`` instead of raising (main thread only).

    DataLoader workers forked inside the context inherit the handler, so a Ctrl-C at the
    terminal does not kill them half-way through a batch either.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.requested and number == signal.SIGINT:
            raise KeyboardInterrupt  # asked twice: stop now, without saving
        self.requested = True
