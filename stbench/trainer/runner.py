"""Runs the training script as a child process: streams, metrics channel, stop signals.

Kept apart from main.py so the process handling (threads, signal handlers, process groups)
can be read on its own; main.py decides *what* to run, this module only *how*.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from stbench.model.container_contract import TRAINER_TIMESTAMP, find_report
from stbench.trainer.early_signals import EARLY_SIGNALS

STDERR_TAIL_LINES = 30
READER_JOIN_SECONDS = 5.0  # after the child exits, for output still in the pipes


@dataclass
class RunResult:
    """How the child ended, and what is needed to explain a failure."""

    returncode: int
    stderr_tail: list[str]
    stop_signal: int | None = None  # the signal that asked us to stop, if any
    reports: int = 0


class MetricsChannel:
    """Appends each report as one JSON line to a file the orchestrator tails.

    One file per training job, flushed per line, so the orchestrator can follow all trials by
    reading only the bytes appended since its last look.
    """

    def __init__(self, path: Path | None):
        self.path = path
        self._handle: IO[str] | None = None

    def send(self, report: dict[str, Any]) -> None:
        if self.path is None:
            return
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "a", encoding="utf-8")  # kept open: one per report
        self._handle.write(json.dumps({**report, TRAINER_TIMESTAMP: time.time()}) + "\n")
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


@dataclass
class _State:
    """Shared between the reader threads and the main thread."""

    reports: int = 0
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=STDERR_TAIL_LINES))


def _signal_group(child: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the child's whole process group: data loaders and other helpers stop too."""
    try:
        os.killpg(child.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # already gone


class StopSignals:
    """SIGTERM/SIGINT for the whole run: StopTrainingJob, `docker stop`, Ctrl-C.

    Installed before the slow imports, because as a container's PID 1 a signal with the
    default action would be ignored. Protocol: SIGTERM to the child's group, so a script may
    checkpoint; SIGKILL after `grace_seconds` (SageMaker kills us at 120 s); a second signal
    kills at once.
    """

    def __init__(self, grace_seconds: float, log: Callable[[str], None]):
        self.grace_seconds = grace_seconds
        self.log = log
        self.stop_signal: int | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._stopping = False
        self._killer: threading.Timer | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._on_signal)
        if EARLY_SIGNALS and self.stop_signal is None:  # came while the trainer was importing
            self.stop_signal = EARLY_SIGNALS[0]
            self.log(f"received {signal.Signals(self.stop_signal).name} while starting up")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._killer is not None:
            self._killer.cancel()
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def attach(self, child: subprocess.Popen[bytes]) -> None:
        """From now on a stop goes to this child; one that came while starting it, at once."""
        self._child = child
        if self.stop_signal is not None:
            self._stop(child)

    def _say(self, message: str) -> None:
        try:
            self.log(message)
        except RuntimeError:  # the signal interrupted a write to stderr: stay silent
            pass

    def _stop(self, child: subprocess.Popen[bytes]) -> None:
        if self._stopping:
            return
        self._stopping = True
        assert self.stop_signal is not None
        self._say(f"received {signal.Signals(self.stop_signal).name}: sending SIGTERM to the "
                  f"training script, SIGKILL in {self.grace_seconds:g} s")
        _signal_group(child, signal.SIGTERM)
        self._killer = threading.Timer(self.grace_seconds, _signal_group, (child, signal.SIGKILL))
        self._killer.daemon = True
        self._killer.start()

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.stop_signal is None:
            self.stop_signal = signum
            if self._child is not None:
                self._stop(self._child)
        elif self._child is not None:
            self._say(f"second {signal.Signals(signum).name}: killing the training script")
            _signal_group(self._child, signal.SIGKILL)


def run_child(argv: list[str], channel: MetricsChannel, stops: StopSignals,
              log: Callable[[str], None], defaults: dict[str, str] | None = None) -> RunResult:
    """Run argv to the end (stops forwarded by `stops`); returns how it ended. `defaults`
    are environment variables the job's own environment may override."""
    state = _State()
    env = {**(defaults or {}), **os.environ}
    env.setdefault("PYTHONUNBUFFERED", "1")  # reports must reach us when printed
    try:
        child = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, start_new_session=True,  # own process group: we signal the whole group
        )
        stops.attach(child)
        assert child.stdout is not None and child.stderr is not None
        readers = [
            threading.Thread(target=_pump_stdout, args=(child.stdout, channel, state, log),
                             daemon=True),
            threading.Thread(target=_pump_stderr, args=(child.stderr, state), daemon=True),
        ]
        for reader in readers:
            reader.start()
        returncode = child.wait()
        for reader in readers:
            reader.join(READER_JOIN_SECONDS)
        if any(reader.is_alive() for reader in readers):
            # the script left processes behind that still hold its output pipes
            log("processes left by the training script keep its output open: killing them")
            _signal_group(child, signal.SIGKILL)
            for reader in readers:
                reader.join(READER_JOIN_SECONDS)
    finally:
        channel.close()
    return RunResult(returncode=returncode, stderr_tail=list(state.tail),
                     stop_signal=stops.stop_signal, reports=state.reports)


def _pump_stdout(stream: IO[bytes], channel: MetricsChannel, state: _State,
                 log: Callable[[str], None]) -> None:
    """Echo every line (CloudWatch reads our stdout) and forward each report."""
    for raw in stream:
        line = raw.decode("utf-8", errors="replace")
        sys.stdout.write(line if line.endswith("\n") else line + "\n")
        sys.stdout.flush()
        try:
            report = find_report(line)
        except ValueError as err:
            log(f"ignoring {err}")
            continue
        if report is None:
            continue
        try:
            channel.send(report)
        except OSError as err:  # a full disk must not kill the trial: the echo still went out
            log(f"cannot write to the metrics channel {channel.path}: {err}")
        state.reports += 1


def _pump_stderr(stream: IO[bytes], state: _State) -> None:
    """Pass stderr through, keeping the last lines to explain a failure."""
    for raw in stream:
        line = raw.decode("utf-8", errors="replace")
        sys.stderr.write(line if line.endswith("\n") else line + "\n")
        sys.stderr.flush()
        state.tail.append(line.rstrip("\n"))
