"""Stop signals that come before the trainer's own handlers are set.

As a container's PID 1 (SageMaker runs the image's exec-form ENTRYPOINT), a process ignores
SIGTERM until it sets a handler, and importing the trainer takes a second or two. The
console entry point (`entry.py`) calls `remember_stop_signals` first; `runner.StopSignals`
acts on what was remembered once it takes over. Its own module, so the entry point and the
runner both import it and not each other.
"""

from __future__ import annotations

import signal
from types import FrameType

EARLY_SIGNALS: list[int] = []  # stop signals that came before the trainer's own handlers


def _remember(signum: int, frame: FrameType | None) -> None:
    EARLY_SIGNALS.append(signum)


def remember_stop_signals() -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _remember)
