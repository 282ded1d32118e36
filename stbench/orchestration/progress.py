"""Live progress of an experiment on the terminal.

On a TTY one line is redrawn in place; in logs (CI, containers) a line is printed every
`log_interval` seconds, so long runs show progress without flooding the output.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True)
class ProgressSnapshot:
    elapsed: float
    budget: float
    started: int
    running: int
    failed: int
    best: float | None
    metric: str
    spent: float | None = None  # USD, where the trials are priced
    max_cost: float | None = None

    def line(self) -> str:
        best = f"{self.best:.4g}" if self.best is not None else "-"
        cost = "" if self.spent is None else f"  ${self.spent:.4g}"
        if cost and self.max_cost is not None:
            cost += f"/${self.max_cost:g}"
        return (
            f"{self.elapsed:6.1f}/{self.budget:g}s  trials {self.started:4d} "
            f"({self.running} running, {self.failed} failed)  best {self.metric} {best}{cost}"
        )


def retried_text(retries: dict[str, int]) -> str:
    """` (retried 12 throttled calls, 3 capacity refusals)` for the summary line, or ''."""
    done = [f"{count} {what.replace('_', ' ')}" for what, count in retries.items() if count]
    return f" (retried {', '.join(done)})" if done else ""


class Progress:
    def __init__(self, label: str, stream: TextIO | None = None, log_interval: float = 10.0,
                 tty_interval: float = 0.2):
        self.label = label
        self.stream = stream or sys.stderr
        self.is_tty = self.stream.isatty()
        self.interval = tty_interval if self.is_tty else log_interval
        self._last = 0.0

    def update(self, snapshot: ProgressSnapshot) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        self._last = now
        text = f"[{self.label}] {snapshot.line()}"
        if self.is_tty:
            self.stream.write("\r\x1b[2K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def note(self, message: str) -> None:
        prefix = "\r\x1b[2K" if self.is_tty else ""
        self.stream.write(f"{prefix}[{self.label}] {message}\n")
        self.stream.flush()
        self._last = 0.0

    def finish(self, snapshot: ProgressSnapshot, status: str, reason: str) -> None:
        prefix = "\r\x1b[2K" if self.is_tty else ""
        self.stream.write(f"{prefix}[{self.label}] {snapshot.line()}  -> {status}: {reason}\n")
        self.stream.flush()


class SilentProgress(Progress):
    """For benchmarks and tests that measure the loop, not the terminal."""

    def __init__(self) -> None:
        super().__init__("", stream=sys.stderr)

    def update(self, snapshot: ProgressSnapshot) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def finish(self, snapshot: ProgressSnapshot, status: str, reason: str) -> None:
        pass
