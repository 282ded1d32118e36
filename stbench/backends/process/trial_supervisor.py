"""Trial supervisor: forks trial processes from an interpreter that already imported their modules.

Starting a fresh Python for each trial costs about a second of imports (numpy, scikit-learn,
syne_tune), which dominates short trials. This process imports the training script's
top-level modules once, then forks one child per trial that runs the script unchanged with
`runpy` (so `__name__ == "__main__"` and `sys.argv` look as usual). It multiplexes all
children's output in one single-threaded select loop and sends the backend compact events:

    stdin  (commands, JSON lines): preload, start, signal, exit
    stdout (events, JSON lines):   started, metric, exited

Every line a trial prints still lands in its std.out / std.err log files.

The supervisor itself is forked from the orchestrator when it can be (`fork_supervisor`):
the orchestrator has already imported syne_tune, numpy and pandas, which a new interpreter
would spend most of a second importing again before the first trial can start.
"""

from __future__ import annotations

import ast
import gc
import importlib
import json
import os
import runpy
import selectors
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stbench.model.container_contract import METRIC_TAG

EOF_WAIT_SECONDS = 2.0
TAIL_LINES = 20


@dataclass
class Child:
    trial: int
    pid: int
    err_fd: int
    logs: dict[int, Any]  # pipe fd -> open log file
    buffers: dict[int, bytes]
    stderr_tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    returncode: int | None = None
    exited_at: float | None = None
    kill_at: float | None = None


def top_level_modules(script: Path) -> list[str]:
    """Modules the script imports at module level: safe to import ahead of time."""
    tree = ast.parse(script.read_text(), filename=str(script))
    names: list[str] = []
    for node in tree.body:
        blocks = [node] if not isinstance(node, ast.Try) else [*node.body]
        for stmt in blocks:
            if isinstance(stmt, ast.Import):
                names.extend(alias.name for alias in stmt.names)
            elif isinstance(stmt, ast.ImportFrom) and stmt.level == 0 and stmt.module:
                names.append(stmt.module)
    return names


class Supervisor:
    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.children: dict[int, Child] = {}  # pid -> child
        self.by_fd: dict[int, Child] = {}
        self.out = os.fdopen(os.dup(1), "w", buffering=1)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 1)  # stray prints of preloaded modules must not corrupt events
        os.close(devnull)
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: self.shutdown(0))
        self.selector.register(self.wake_r, selectors.EVENT_READ, "wake")
        self.selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "cmd")
        self.cmd_buffer = b""
        self.running = True

    def emit(self, **event: Any) -> None:
        self.out.write(json.dumps(event) + "\n")

    def serve(self) -> None:
        while self.running or self.children:
            for key, _ in self.selector.select(timeout=self._timeout()):
                if key.data == "cmd":
                    self._read_commands()
                elif key.data == "wake":
                    os.read(self.wake_r, 4096)
                else:
                    self._read_output(key.fd)
            self._reap()
            self._enforce_kills()

    def _timeout(self) -> float | None:
        deadlines = [c.kill_at for c in self.children.values() if c.kill_at]
        deadlines += [c.exited_at + EOF_WAIT_SECONDS for c in self.children.values()
                      if c.exited_at]
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def _read_commands(self) -> None:
        chunk = os.read(sys.stdin.fileno(), 65536)
        if not chunk:  # the backend went away: end every trial
            self.shutdown(0)
            return
        self.cmd_buffer += chunk
        *lines, self.cmd_buffer = self.cmd_buffer.split(b"\n")
        for line in lines:
            if line.strip():
                self.handle(json.loads(line))

    def handle(self, command: dict[str, Any]) -> None:
        op = command["op"]
        if op == "preload":
            self.preload(Path(command["script"]))
        elif op == "start":
            self.start(command)
        elif op == "signal":
            self.send_signal(command["trial"], command["signal"], command.get("kill_after"))
        elif op == "exit":
            self.shutdown(command.get("grace", 5.0))

    def preload(self, script: Path) -> None:
        sys.path.insert(0, str(script.parent))
        loaded = []
        for name in top_level_modules(script):
            try:
                importlib.import_module(name)
                loaded.append(name)
            except Exception:  # the trial itself will report a real import problem
                pass
        self.emit(event="preloaded", modules=loaded)

    def start(self, command: dict[str, Any]) -> None:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        log_dir = Path(command["log_dir"])
        log_dir.mkdir(parents=True, exist_ok=True)
        gc.freeze()  # children's garbage collection must not touch (and copy) inherited pages
        pid = os.fork()
        if pid == 0:
            self._become_trial(command, out_w, err_w, keep=(out_w, err_w))
        os.close(out_w)
        os.close(err_w)
        child = Child(
            trial=command["trial"],
            pid=pid,
            err_fd=err_r,
            logs={out_r: open(log_dir / "std.out", "a"), err_r: open(log_dir / "std.err", "a")},
            buffers={out_r: b"", err_r: b""},
        )
        self.children[pid] = child
        for fd in (out_r, err_r):
            self.by_fd[fd] = child
            self.selector.register(fd, selectors.EVENT_READ, "child")
        self.emit(event="started", trial=child.trial, pid=pid, time=time.time())

    def _become_trial(self, command: dict[str, Any], out_w: int, err_w: int,
                      keep: tuple[int, ...]) -> None:
        """Runs in the forked child; never returns."""
        code = 1
        try:
            os.setpgid(0, 0)
            signal.set_wakeup_fd(-1)
            for sig in (signal.SIGCHLD, signal.SIGTERM):
                signal.signal(sig, signal.SIG_DFL)
            self.selector.close()
            for fd in [self.wake_r, self.wake_w, self.out.fileno(), *self.by_fd]:
                os.close(fd)
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            for fd in (devnull, *keep):
                os.close(fd)
            sys.stdout = os.fdopen(1, "w", buffering=1)
            sys.stderr = os.fdopen(2, "w", buffering=1)
            os.environ.update(command.get("env", {}))
            os.chdir(command["cwd"])
            sys.argv = list(command["argv"])
            sys.path[0] = str(Path(sys.argv[0]).parent)
            runpy.run_path(sys.argv[0], run_name="__main__")
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if not isinstance(exc.code, int) and exc.code is not None:
                print(exc.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)

    def _read_output(self, fd: int) -> None:
        child = self.by_fd[fd]
        chunk = os.read(fd, 65536)
        if not chunk:
            self._close_fd(fd)
            return
        data = child.buffers[fd] + chunk
        *lines, child.buffers[fd] = data.split(b"\n")
        self._handle_lines(child, fd, lines)

    def _handle_lines(self, child: Child, fd: int, lines: list[bytes]) -> None:
        log = child.logs[fd]
        is_stderr = fd == child.err_fd
        for raw in lines:
            text = raw.decode("utf-8", errors="replace")
            log.write(text + "\n")
            if is_stderr:
                if text.strip():
                    child.stderr_tail.append(text)
            elif text.startswith(METRIC_TAG):
                self.emit(event="metric", trial=child.trial, time=time.time(),
                          report=text[len(METRIC_TAG):])
        log.flush()

    def _close_fd(self, fd: int, finish: bool = True) -> None:
        child = self.by_fd.pop(fd)
        if child.buffers[fd]:
            self._handle_lines(child, fd, [child.buffers[fd]])
        self.selector.unregister(fd)
        os.close(fd)
        child.logs.pop(fd).close()
        child.buffers.pop(fd)
        if finish:
            self._maybe_finish(child)

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.get(pid)
            if child is None:
                continue
            child.returncode = os.waitstatus_to_exitcode(status)
            child.exited_at = time.monotonic()
            self._maybe_finish(child)

    def _maybe_finish(self, child: Child, force: bool = False) -> None:
        if child.returncode is None or (child.logs and not force):
            return
        for fd in list(child.logs):  # a grandchild kept the pipe open: give up on it
            self._close_fd(fd, finish=False)
        self.children.pop(child.pid, None)
        self.emit(event="exited", trial=child.trial, returncode=child.returncode,
                  stderr_tail=list(child.stderr_tail), time=time.time())

    def _enforce_kills(self) -> None:
        now = time.monotonic()
        for child in list(self.children.values()):
            if child.kill_at and now >= child.kill_at and child.returncode is None:
                self._killpg(child.pid, signal.SIGKILL)
                child.kill_at = None
            if child.exited_at and now >= child.exited_at + EOF_WAIT_SECONDS:
                self._maybe_finish(child, force=True)

    def send_signal(self, trial: int, signum: int, kill_after: float | None) -> None:
        for child in self.children.values():
            if child.trial == trial and child.returncode is None:
                self._killpg(child.pid, signum)
                if kill_after is not None:
                    child.kill_at = time.monotonic() + kill_after

    @staticmethod
    def _killpg(pid: int, signum: int) -> None:
        try:
            os.killpg(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def shutdown(self, grace: float) -> None:
        self.running = False
        try:
            self.selector.unregister(sys.stdin.fileno())
        except (KeyError, ValueError):
            pass
        for child in self.children.values():
            if child.returncode is None:
                self._killpg(child.pid, signal.SIGTERM)
                child.kill_at = time.monotonic() + grace


def _same_import_path(env: dict[str, str]) -> bool:
    """Whether a fork imports what a new interpreter started with `env` would: PYTHONPATH is
    read only at start-up, so one set after this process started (a user's own packages for
    the trials) is not on our sys.path, and only a new interpreter would find them."""
    here = {os.path.abspath(p) for p in sys.path if p}
    wanted = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    return all(os.path.abspath(p) in here for p in wanted)


class ForkedSupervisor:
    """The part of `subprocess.Popen` the backend uses, for a supervisor forked by
    `fork_supervisor`: its pid, its command and event pipes, and waiting for its end."""

    def __init__(self, pid: int, stdin: Any, stdout: Any):
        self.pid, self.stdin, self.stdout = pid, stdin, stdout
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("trial supervisor", timeout or 0.0)
            time.sleep(0.01)
        assert self.returncode is not None
        return self.returncode


def fork_supervisor(env: dict[str, str]) -> ForkedSupervisor | None:
    """The supervisor as a fork of this process, in its own session; None where forking is
    not safe (another thread may hold a lock the child would wait on forever), and the
    caller then starts a new interpreter instead. The child keeps only its two pipes and
    stderr, ignores the orchestrator's objects (`gc.freeze`), and limits the thread pools
    already loaded (numpy's BLAS) to what `OMP_NUM_THREADS` in `env` says, as a new
    interpreter started with `env` would."""
    if threading.active_count() > 1 or not hasattr(os, "fork") or not _same_import_path(env):
        return None
    command_r, command_w = os.pipe()
    event_r, event_w = os.pipe()
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            gc.freeze()
            os.setsid()
            os.dup2(command_r, 0)
            os.dup2(event_w, 1)
            os.closerange(3, os.sysconf("SC_OPEN_MAX"))
            sys.stdin = open(0, closefd=False)  # noqa: SIM115 - fd 0 lives as long as we do
            os.environ.clear()
            os.environ.update(env)
            _limit_thread_pools(env)
            main()
            code = 0
        finally:
            os._exit(code)
    os.close(command_r)
    os.close(event_w)
    return ForkedSupervisor(pid, os.fdopen(command_w, "wb"), os.fdopen(event_r, "rb"))


def _limit_thread_pools(env: dict[str, str]) -> None:
    threads = env.get("OMP_NUM_THREADS", "")
    if not threads.isdigit():
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(int(threads))


def main() -> None:
    Supervisor().serve()


if __name__ == "__main__":
    main()
