"""Trials as local processes, forked by the trial supervisor (see trial_supervisor.py).

A Syne Tune `TrialBackend`, so the Tuner could drive it too; it adds `wait_for_activity`,
which lets our loop sleep until a trial reports or exits instead of polling on a timer.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from syne_tune.backend.trial_backend import TrialBackend
from syne_tune.backend.trial_status import Status, TrialResult

from stbench.backends.events import ActivitySignal
from stbench.backends.gpus import least_busy, visible_gpus
from stbench.backends.process.trial_supervisor import ForkedSupervisor, fork_supervisor
from stbench.backends.without_jobs import WithoutJobs
from stbench.model.failures import killed_by
from stbench.model.script_args import script_arguments

STOP_GRACE_SECONDS = 10.0
RECEIVE_TIMESTAMP = "st_receive_timestamp"


@dataclass
class TrialProcess:
    """What the backend knows about one trial's (current) process."""

    status: str = Status.in_progress
    alive: bool = True
    metrics: list[dict[str, Any]] = field(default_factory=list)
    failure_reason: str = ""
    end_time: datetime | None = None
    gpu: str | None = None  # the one device it sees, on a machine with GPUs


class LocalProcessBackend(WithoutJobs, TrialBackend):
    """Runs each trial as a forked process of one supervisor; `first_trial_id` allows resume."""

    def __init__(self, entry_point: Path, trials_dir: Path, first_trial_id: int = 0,
                 stop_grace_seconds: float = STOP_GRACE_SECONDS,
                 environment: dict[str, str] | None = None):
        super().__init__()
        self.environment = dict(environment or {})  # every trial's, e.g. SM_CHANNEL_<NAME>
        self.entry_point = Path(entry_point).resolve()
        self.trials_dir = Path(trials_dir)
        # past every trial folder too: a trial started just before a kill -9 has a folder
        # (its checkpoints) but may have no results row yet, and its id must not be reused
        self.first_trial_id = max(first_trial_id, _next_unused_id(self.trials_dir))
        self.stop_grace_seconds = stop_grace_seconds
        self.activity = ActivitySignal()
        self._lock = threading.Lock()
        self._trials: dict[int, TrialProcess] = {}
        self._supervisor: subprocess.Popen[bytes] | ForkedSupervisor | None = None
        self._commands: IO[str] | None = None
        self._reader: threading.Thread | None = None
        self._preloaded = threading.Event()
        self.gpus = visible_gpus()

    # --- supervisor lifecycle -------------------------------------------------------------

    def start_supervisor(self, wait_seconds: float = 120.0) -> None:
        """Start the supervisor and let it import the script's modules (before the clock runs)."""
        if self._supervisor is not None:
            return
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", "1")  # n_workers trials share the cores
        env["PYTHONUNBUFFERED"] = "1"
        self._supervisor = fork_supervisor(env) or subprocess.Popen(
            [sys.executable, "-m", "stbench.backends.process.trial_supervisor"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
            start_new_session=True,  # Ctrl-C goes to us; we end the trials in order
        )
        assert self._supervisor.stdin is not None
        self._commands = open(self._supervisor.stdin.fileno(), "w", buffering=1, closefd=False)
        self._reader = threading.Thread(target=self._read_events, daemon=True)
        self._reader.start()
        self._send(op="preload", script=str(self.entry_point))
        self._preloaded.wait(wait_seconds)

    def close(self) -> None:
        """Ends every trial (SIGTERM, then SIGKILL after the grace period) and the supervisor."""
        if self._supervisor is None:
            return
        try:
            self._send(op="exit", grace=self.stop_grace_seconds)
            self._supervisor.stdin.close()  # type: ignore[union-attr]
        except (BrokenPipeError, OSError):
            pass
        try:
            self._supervisor.wait(timeout=self.stop_grace_seconds + 5)
        except subprocess.TimeoutExpired:
            os.killpg(self._supervisor.pid, signal.SIGKILL)
            self._supervisor.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
        self._supervisor = None

    def _send(self, **command: Any) -> None:
        assert self._commands is not None
        self._commands.write(json.dumps(command) + "\n")

    def _read_events(self) -> None:
        assert self._supervisor is not None and self._supervisor.stdout is not None
        for line in self._supervisor.stdout:
            event = json.loads(line)
            with self._lock:
                self._apply(event)
            self.activity.notify()
        with self._lock:  # the supervisor is gone: nothing still running can finish
            for proc in self._trials.values():
                if proc.alive:
                    proc.alive = False
                    if proc.status == Status.in_progress:
                        proc.status = Status.failed
                        proc.failure_reason = "the trial supervisor process ended unexpectedly"
        self._preloaded.set()
        self.activity.notify()

    def _apply(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "preloaded":
            self._preloaded.set()
            return
        proc = self._trials.get(event.get("trial", -1))
        if kind == "metric" and proc is not None:
            try:
                report = json.loads(event["report"])
            except json.JSONDecodeError:
                return
            report[RECEIVE_TIMESTAMP] = event["time"]
            proc.metrics.append(report)
        elif kind == "exited" and proc is not None:
            proc.alive = False
            proc.end_time = datetime.now()
            if proc.status == Status.stopping:
                proc.status = Status.stopped
            elif proc.status == Status.in_progress:
                if event["returncode"] == 0:
                    proc.status = Status.completed
                else:
                    proc.status = Status.failed
                    proc.failure_reason = _failure_reason(event)

    # --- TrialBackend ---------------------------------------------------------------------

    def new_trial_id(self) -> int:
        return self.first_trial_id + len(self.trial_ids)

    def trial_path(self, trial_id: int) -> Path:
        return self.trials_dir / str(trial_id)

    def checkpoint_path(self, trial_id: int) -> Path:
        return self.trial_path(trial_id) / "checkpoints"

    def _schedule(self, trial_id: int, config: dict[str, Any]) -> None:
        self.start_supervisor()
        argv = [str(self.entry_point), *script_arguments(config, self.checkpoint_path(trial_id))]
        path = self.trial_path(trial_id)
        path.mkdir(parents=True, exist_ok=True)
        env = {**self.environment, "ST_TRIAL_ID": str(trial_id)}
        with self._lock:
            previous = self._trials.get(trial_id)
            gpu = least_busy(self.gpus, [p.gpu for p in self._trials.values() if p.alive])
            self._trials[trial_id] = TrialProcess(metrics=previous.metrics if previous else [],
                                                  gpu=gpu)
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        self._send(op="start", trial=trial_id, argv=argv, cwd=str(path), log_dir=str(path),
                   env=env)

    def _all_trial_results(self, trial_ids: list[int]) -> list[TrialResult]:
        with self._lock:
            return [
                self._trial_dict[t].add_results(
                    metrics=list(self._trials[t].metrics),
                    status=self._trials[t].status,
                    training_end_time=self._trials[t].end_time,
                )
                for t in trial_ids
            ]

    def _signal(self, trial_id: int, status: str) -> None:
        with self._lock:
            proc = self._trials[trial_id]
            if not proc.alive:
                if proc.status == Status.in_progress:
                    proc.status = status
                return
            proc.status = Status.stopping if status == Status.stopped else status
        self._send(op="signal", trial=trial_id, signal=int(signal.SIGTERM),
                   kill_after=self.stop_grace_seconds)

    def _stop_trial(self, trial_id: int, result: dict | None) -> None:
        self._signal(trial_id, Status.stopped)

    def _pause_trial(self, trial_id: int, result: dict | None) -> None:
        self._signal(trial_id, Status.paused)

    def _resume_trial(self, trial_id: int) -> None:
        pass  # the checkpoint folder stays where the new process will look

    def busy_trial_ids(self) -> list[tuple[int, str]]:
        """Trials whose process still runs, stopping ones included: they hold a worker."""
        with self._lock:
            return [(t, p.status) for t, p in self._trials.items() if p.alive]

    def failure_reason(self, trial_id: int) -> str:
        with self._lock:
            return self._trials[trial_id].failure_reason

    def trial_annotations(self, trial_id: int) -> dict[str, Any]:
        return {}  # nothing beyond the reports: no jobs, no billing

    def wait_for_activity(self, timeout: float) -> None:
        self.activity.wait(timeout)

    def copy_checkpoint(self, src_trial_id: int, tgt_trial_id: int) -> None:
        shutil.copytree(self.checkpoint_path(src_trial_id), self.checkpoint_path(tgt_trial_id))

    def delete_checkpoint(self, trial_id: int) -> None:
        shutil.rmtree(self.checkpoint_path(trial_id), ignore_errors=True)

    def stdout(self, trial_id: int) -> list[str]:
        return _read_lines(self.trial_path(trial_id) / "std.out")

    def stderr(self, trial_id: int) -> list[str]:
        return _read_lines(self.trial_path(trial_id) / "std.err")

    def entrypoint_path(self) -> Path:
        return self.entry_point

    def set_entrypoint(self, entry_point: str) -> None:
        self.entry_point = Path(entry_point).resolve()


def _failure_reason(event: dict[str, Any]) -> str:
    code = event["returncode"]
    tail = [line for line in event.get("stderr_tail", []) if line.strip()]
    if code < 0:
        return killed_by(-code)
    last = tail[-1].strip() if tail else "no error output"
    return f"exit code {code}: {last}"


def _next_unused_id(trials_dir: Path) -> int:
    ids = [int(p.name) for p in trials_dir.glob("*") if p.name.isdigit()]
    return max(ids, default=-1) + 1


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines(keepends=True)
    except FileNotFoundError:
        return []
