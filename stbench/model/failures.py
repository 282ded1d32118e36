"""Words for how a trial died, the same in every back-end's failure reasons."""

from __future__ import annotations

import signal


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def crash_reason(err: BaseException) -> str:
    """`crashed: Type: first line of the message`: the one line that an experiment's
    metadata, the CLI's error and a job's FailureReason all show for a crash."""
    message = str(err).strip().splitlines()[0] if str(err).strip() else ""
    text = f"{type(err).__name__}: {message}" if message else type(err).__name__
    return f"crashed: {text[:500]}"


def killed_by(number: int) -> str:
    """A SIGKILL nobody asked for is most often the kernel's OOM killer: say so."""
    reason = f"killed by signal {signal_name(number)}"
    return reason + " (out of memory?)" if number == signal.SIGKILL else reason
