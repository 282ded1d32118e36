"""A wake-up signal between a backend's event thread and the experiment loop."""

from __future__ import annotations

import threading


class ActivitySignal:
    """Set when something happened; `wait` returns at once if anything did since the last wait.

    This replaces a fixed polling sleep: the loop reacts to a finished trial within
    milliseconds, and sleeps when nothing happens.
    """

    def __init__(self) -> None:
        self._event = threading.Event()

    def notify(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> bool:
        happened = self._event.wait(max(0.0, timeout))
        self._event.clear()
        return happened
