"""Words for how a trial died, the same in every back-end's failure reasons."""

from __future__ import annotations

import signal


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def killed_by(number: int) -> str:
    """A SIGKILL nobody asked for is most often the kernel's OOM killer: say so."""
    reason = f"killed by signal {signal_name(number)}"
    return reason + " (out of memory?)" if number == signal.SIGKILL else reason
