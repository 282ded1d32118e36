"""Stop signals wait while an experiment cleans up.

Ending an experiment stops its trials' jobs, waits for them and releases their warm pools.
A second Ctrl-C, or a SIGTERM arriving then (`docker stop`, StopTrainingJob), would cut that
short and leave jobs running and pools billed; so within `deferred_stop_signals` SIGINT and
SIGTERM are only noted, and raised as KeyboardInterrupt once the block is done.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def deferred_stop_signals() -> Iterator[None]:
    """SIGINT and SIGTERM are honoured after the block (only the main thread handles
    signals; elsewhere the block runs as is)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def note(signum: int, frame: Any) -> None:
        if not received:
            print("stbench: stopping trials and releasing warm pools first; the stop signal "
                  "takes effect after that", file=sys.stderr, flush=True)
        received.append(signum)

    previous = {sig: signal.signal(sig, note) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        raise KeyboardInterrupt
