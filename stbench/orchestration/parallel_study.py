"""A simulated study's experiments in parallel worker processes (`--jobs N`).

In simulated time an experiment's results do not depend on the wall clock, nor on what else
runs beside it, so its experiments can share the CPUs: each worker process runs whole
experiments, one at a time, each into its own folder, exactly as the serial loop would. A
worker's progress goes to a buffer; the parent prints it when the experiment has finished,
one block per experiment, so parallel output never interleaves.

Workers are spawned (not forked: the parent may hold BLAS and OpenMP thread pools) and
ignore Ctrl-C; the parent stops them with SIGTERM, which each turns into the
KeyboardInterrupt the experiment loop records as an interrupted run, so `--resume`
continues it like a serial one.
"""

from __future__ import annotations

import ctypes
import io
import logging
import multiprocessing
import pickle
import queue
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from threadpoolctl import threadpool_limits

from stbench.model.errors import UserError
from stbench.orchestration.loop_state import ExperimentOutcome

POLL_SECONDS = 1.0  # how often the parent checks that its workers are still alive
STOP_SECONDS = 30.0  # how long a stopped worker may take to record its interrupted run
INTERRUPTED_EXIT = 130
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD_BYTES = 32 * 2**20  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit


@dataclass(frozen=True)
class Finished:
    """What a worker sends back for one experiment."""

    index: int
    outcome: ExperimentOutcome | None
    progress_text: str
    error: BaseException | None = None
    error_traceback: str = ""


class WorkerCrashed(RuntimeError):
    """An experiment raised in a worker process; its traceback is in the message."""


RunExperiment = Callable[..., ExperimentOutcome]  # study_runner.run_experiment


def run_in_processes(plan: Any, indices: list[int], jobs: int, run: RunExperiment,
                     stream: TextIO | None = None) -> dict[int, ExperimentOutcome]:
    """Run `plan.experiments[i]` for every i in `indices` on `jobs` processes, each by
    `run(plan, experiment, stream, live_progress=False)`: a module-level function, which the
    spawned workers import by name (so this module does not import the study runner)."""
    stream = stream or sys.stderr
    context = multiprocessing.get_context("spawn")
    tasks: Any = context.Queue()
    results: Any = context.Queue()
    for index in indices:
        tasks.put(index)
    workers = [context.Process(target=_work, daemon=True,
                               args=(plan, run, tasks, results,
                                     logging.getLogger("syne_tune").level))
               for _ in range(min(jobs, len(indices)))]
    for worker in workers:
        tasks.put(None)  # one stop mark per worker
        worker.start()
    outcomes: dict[int, ExperimentOutcome] = {}
    try:
        while len(outcomes) < len(indices):
            finished = _next_result(results, workers)
            if finished.error is not None:
                _raise_from_worker(finished)
            assert finished.outcome is not None
            outcomes[finished.index] = finished.outcome
            _print_finished(stream, finished.progress_text, len(outcomes), len(indices))
    except BaseException:
        _stop(workers)
        raise
    for worker in workers:  # each has read its stop mark
        worker.join(STOP_SECONDS)
    _stop(workers)
    return outcomes


def _next_result(results: Any, workers: list[Any]) -> Finished:
    while True:
        try:
            return results.get(timeout=POLL_SECONDS)
        except queue.Empty:
            codes = [w.exitcode for w in workers]
            if INTERRUPTED_EXIT in codes:  # a worker was stopped from outside: stop the rest
                raise KeyboardInterrupt from None
            crashed = [code for code in codes if code not in (None, 0)]
            if crashed or all(code is not None for code in codes):
                raise WorkerCrashed(f"a worker process of the study ended (exit code "
                                    f"{(crashed or codes)[0]}) before finishing its "
                                    "experiments") from None


def _raise_from_worker(finished: Finished) -> None:
    """Re-raise the worker's exception here (a UserError stays one line and exit code 2)."""
    assert finished.error is not None
    if not isinstance(finished.error, UserError):
        sys.stderr.write(finished.progress_text + finished.error_traceback)
    raise finished.error


def _print_finished(stream: TextIO, text: str, done: int, total: int) -> None:
    """The experiment's notes and final line, the final line prefixed with the count."""
    lines = text.splitlines()
    if lines:
        lines[-1] = f"({done}/{total}) {lines[-1]}"
    stream.write("".join(line + "\n" for line in lines))
    stream.flush()


def _stop(workers: list[Any]) -> None:
    """SIGTERM to workers still running (an interrupt, or another experiment's crash)."""
    for worker in workers:
        if worker.is_alive():
            worker.terminate()
    for worker in workers:
        worker.join(STOP_SECONDS)
        if worker.is_alive():
            worker.kill()
            worker.join()


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _work(plan: Any, run: RunExperiment, tasks: Any, results: Any,
          syne_tune_log_level: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops us
    signal.signal(signal.SIGTERM, _raise_interrupt)
    logging.getLogger("syne_tune").setLevel(syne_tune_log_level)
    _keep_freed_memory()
    try:
        with threadpool_limits(1):  # the same arithmetic as the serial run, see run_study
            while (index := tasks.get()) is not None:
                buffer = io.StringIO()
                try:
                    outcome = run(plan, plan.experiments[index], buffer, live_progress=False)
                except Exception as err:  # recorded as failed by the loop; the parent raises
                    results.put(Finished(index, None, buffer.getvalue(), _picklable(err),
                                         traceback.format_exc()))
                    return
                results.put(Finished(index, outcome, buffer.getvalue()))
    except KeyboardInterrupt:  # stopped: the loop has recorded the interruption
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        sys.exit(INTERRUPTED_EXIT)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # nothing left to record: a stop just ends


def _keep_freed_memory() -> None:
    """glibc hands freed blocks above its mmap threshold back to the OS and raises that
    threshold only once such a block is freed. The parent's surrogate fit raises it; a fresh
    worker's GP arrays (a few 100 kB) were mapped and unmapped over and over instead: 650k
    minor page faults against 54k for 4 MOBSTER experiments, 8 s of system time in the
    30-seed study. A fixed threshold (glibc's dynamic maximum) keeps them in the heap."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to tune
        return
    libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    libc.mallopt(M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD_BYTES)  # what the dynamic rule sets


def _picklable(err: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(err))
        return err
    except Exception:
        return WorkerCrashed(f"{type(err).__name__}: {err}")
