"""The HPO loop for one experiment (benchmark, method, seed).

An event-driven equivalent of Syne Tune's Tuner loop: it talks to the scheduler and the trial
backend through their public interfaces, but sleeps until the backend reports activity
instead of on a fixed timer, so short trials keep the workers busy.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from syne_tune.backend.trial_backend import TrialBackend
from syne_tune.backend.trial_status import Status, Trial
from syne_tune.optimizer.scheduler import SchedulerDecision, TrialScheduler

from stbench.model.errors import UserError
from stbench.model.failures import crash_reason
from stbench.orchestration.cost_meter import CostMeter
from stbench.orchestration.loop_state import Budget, ExperimentOutcome, LoopState
from stbench.orchestration.progress import Progress, ProgressSnapshot, retried_text
from stbench.orchestration.stop_signals import deferred_stop_signals
from stbench.orchestration.store import INTERRUPTED, ResultStore, now_iso

RECEIVE_TIMESTAMP = "st_receive_timestamp"
WORKER_TIME = "st_worker_time"
STOPPED_BY_BUDGET = Status.stopped
BUSY = (Status.in_progress, Status.stopping)
FREEZE_EVERY_TRIALS = 1000  # finished trials between two `_freeze_old_objects`


class EventBackend(Protocol):
    """The part of our backends the loop needs beyond Syne Tune's `TrialBackend`."""

    def busy_trial_ids(self) -> list[tuple[int, str]]: ...
    def wait_for_activity(self, timeout: float) -> None: ...
    def failure_reason(self, trial_id: int) -> str: ...
    def trial_annotations(self, trial_id: int) -> dict[str, Any]: ...
    def late_annotations(self) -> dict[int, dict[str, Any]]: ...
    def retry_counts(self) -> dict[str, int]: ...
    def close(self) -> None: ...
    def end_by(self, deadline: float) -> None: ...  # epoch seconds when the budget ends
    def late_results(self) -> list[tuple[int, dict[str, Any]]]: ...  # read in `close`


class ExperimentLoop:
    """Runs one experiment until its budget ends; the caller owns scheduler and backend."""

    def __init__(self, scheduler: TrialScheduler, backend: TrialBackend, store: ResultStore,
                 budget: Budget, metric: str, mode: str, progress: Progress,
                 state: LoopState | None = None, cost: CostMeter | None = None,
                 method_threads: Callable[[], AbstractContextManager[Any]] | None = None):
        """`cost`: prices the trials; needed for `budget.max_cost`, and where the back-end
        bills nothing it writes each trial's estimated cost into its rows. `method_threads`:
        the context of the scheduler's suggest and result calls (`one_thread_calls`; None:
        as the process is, e.g. a simulated study limited as a whole)."""
        self.scheduler = scheduler
        self.backend = backend
        self.events: EventBackend = backend  # type: ignore[assignment]
        self.store = store
        self.budget = budget
        self.metric = metric
        self.sign = 1.0 if mode == "min" else -1.0
        self.progress = progress
        self.state = state or LoopState()
        self.cost = cost
        if budget.max_cost is not None and cost is None:
            raise ValueError("a cost budget needs a CostMeter")
        self._ended_at: float | None = None  # elapsed seconds when the experiment ended
        self._method_threads = method_threads or contextlib.nullcontext

    def run(self) -> ExperimentOutcome:
        state = self.state
        status, reason, running_end = "completed", "", STOPPED_BY_BUDGET
        self.store.update_metadata(status="running", start_time=now_iso(), end_time=None,
                                   max_cost=self.budget.max_cost)
        self.store.flush(force=True)
        # e.g. capacity waits must not outlast the budget
        self.events.end_by(state.clock.time() + self.budget.max_wallclock_time - state.elapsed)
        try:
            while True:
                self._process_backend()
                reason = self._stop_reason()
                if reason:
                    status = "failed" if state.failures >= self.budget.max_failures else status
                    self._ended_at = state.elapsed
                    break
                self._fill_workers()
                self._report_progress()
                # kept current, so a resume after a kill -9 continues the budget
                self.store.update_metadata(elapsed_seconds=round(state.elapsed, 3))
                self.store.flush()
                remaining = self.budget.max_wallclock_time - state.elapsed
                self.events.wait_for_activity(min(1.0, max(0.0, remaining)))
        except KeyboardInterrupt:
            status, reason = "interrupted", "interrupted by the user or a stop signal"
            running_end = INTERRUPTED
            raise
        except UserError as err:  # e.g. no capacity for a trial after --max_capacity_wait
            status, reason, running_end = "failed", str(err), INTERRUPTED
            raise
        except Exception as err:  # a crash: recorded as failed, so --resume reruns it
            status, reason, running_end = "failed", crash_reason(err), INTERRUPTED
            raise
        finally:
            with deferred_stop_signals():  # a second signal must not cut the cleanup short
                self._shutdown(running_end)
                retries = self.events.retry_counts()
                self.store.update_metadata(
                    status=status, reason=reason, end_time=now_iso(),
                    elapsed_seconds=round(state.elapsed, 3), trials=state.trials_started,
                    failures=state.failures, best=state.best, retries=retries,
                    spent_usd=self._spent(),
                )
                self.store.flush(force=True)
                self.progress.finish(self._snapshot(), status, reason + retried_text(retries))
        return ExperimentOutcome(status, reason, state.trials_started, state.failures, state.best)

    # --- one iteration --------------------------------------------------------------------

    def _process_backend(self) -> None:
        state = self.state
        statuses, results = self.backend.fetch_status_results(list(state.running))
        for trial_id, result in results:
            if trial_id in state.running:
                self._on_result(state.running[trial_id], result)
        for trial_id, (_, status) in statuses.items():
            trial = state.running.get(trial_id)
            if trial is not None and status not in BUSY:
                self._on_finished(trial, status)
        self._record_late_annotations()

    def _record_late_annotations(self) -> None:
        """A retired trial's cost is known once its job ended, its warm pool's once released."""
        for trial_id, fields in self.events.late_annotations().items():
            self.store.annotate_trial(trial_id, **fields)

    def _on_result(self, trial: Trial, result: dict[str, Any]) -> None:
        state = self.state
        state.last_result[trial.trial_id] = result
        self.store.add_row(self._row(trial, result))
        value = result.get(self.metric)
        if isinstance(value, (int, float)):
            if state.best is None or self.sign * value < self.sign * state.best:
                state.best = float(value)
        with self._method_threads():
            decision = self.scheduler.on_trial_result(trial=trial, result=result)
        if decision == SchedulerDecision.STOP:
            self.backend.stop_trial(trial_id=trial.trial_id, result=result)
            self._retire(trial, Status.stopped)
            self.scheduler.on_trial_remove(trial=trial)
        elif decision == SchedulerDecision.PAUSE:
            self.backend.pause_trial(trial_id=trial.trial_id, result=result)
            self._retire(trial, Status.paused)
            self.scheduler.on_trial_remove(trial=trial)

    def _on_finished(self, trial: Trial, status: str) -> None:
        last = self.state.last_result.get(trial.trial_id)
        if status == Status.completed and (last is None or self.metric not in last):
            status = Status.failed
            reason = f"finished without reporting metric '{self.metric}'"
        else:
            reason = self.events.failure_reason(trial.trial_id)
        if status == Status.completed:
            with self._method_threads():
                self.scheduler.on_trial_complete(trial, last)
            self._retire(trial, status)
        elif status == Status.failed:
            self.state.failures += 1
            self.scheduler.on_trial_error(trial)
            self._retire(trial, status, failure_reason=reason)
            self.progress.note(f"trial {trial.trial_id} failed: {reason}")
        else:  # stopped or paused from outside the scheduler
            self.scheduler.on_trial_error(trial)
            self._retire(trial, status)

    def _retire(self, trial: Trial, status: str, **extra: Any) -> None:
        self._ensure_row(trial)
        self.state.running.pop(trial.trial_id, None)
        if status != Status.paused:  # it never comes back: memory stays O(running trials)
            self.state.last_result.pop(trial.trial_id, None)
        self.state.trials_finished += 1
        if self.state.trials_finished % FREEZE_EVERY_TRIALS == 0:
            _freeze_old_objects()
        extra.update(self.events.trial_annotations(trial.trial_id))
        extra.update(self._trial_cost(trial.trial_id))
        self.store.set_trial_status(trial.trial_id, status, **extra)

    def _stop_reason(self) -> str:
        state, budget = self.state, self.budget
        if state.failures >= budget.max_failures:
            return f"{state.failures} trials failed (max_failures={budget.max_failures})"
        if state.elapsed >= budget.max_wallclock_time:
            return f"time budget of {budget.max_wallclock_time:g} s used"
        if budget.max_cost is not None:
            spent = self._spent()
            if spent is not None and spent >= budget.max_cost:
                return f"cost budget of ${budget.max_cost:g} used"
        if state.running:
            return ""
        if budget.max_num_trials is not None and state.trials_started >= budget.max_num_trials:
            return f"{budget.max_num_trials} trials done"
        if state.exhausted:
            return "the method has no more configurations to propose"
        return ""

    def _fill_workers(self) -> None:
        state, budget = self.state, self.budget
        busy = self.events.busy_trial_ids()
        if self._failure_limit_pending(busy):
            return  # the experiment ends once those failures are counted: start nothing more
        free = budget.n_workers - len(busy)
        while free > 0 and not state.exhausted:
            if budget.max_num_trials is not None and state.trials_started >= budget.max_num_trials:
                return
            with self._method_threads():
                suggestion = self.scheduler.suggest()
            if suggestion is None:
                state.exhausted = True
                return
            if suggestion.spawn_new_trial_id:
                trial = self.backend.start_trial(
                    config=suggestion.config.copy(),
                    checkpoint_trial_id=suggestion.checkpoint_trial_id,
                )
                self.scheduler.on_trial_add(trial=trial)
                state.trials_started += 1
            else:
                trial = self.backend.resume_trial(
                    trial_id=suggestion.checkpoint_trial_id, new_config=suggestion.config
                )
            state.running[trial.trial_id] = Trial(
                trial_id=trial.trial_id, config=trial.config, creation_time=trial.creation_time
            )
            if self.cost is not None:
                self.cost.trial_started(trial.trial_id, state.clock.time())
            free -= 1

    def _failure_limit_pending(self, busy: list[tuple[int, str]]) -> bool:
        """Whether failures not counted yet reach max_failures: trials the backend reports
        `failed` while their last reports are read, and trials that ended after the last
        poll (read once more when they could reach the limit), so that no trial starts
        after the failure that ends the experiment."""
        state = self.state
        busy_ids = {trial_id for trial_id, _ in busy}
        unread = [trial_id for trial_id in state.running if trial_id not in busy_ids]
        failing = sum(1 for _, status in busy if status == Status.failed)
        if unread and state.failures + failing + len(unread) >= self.budget.max_failures:
            self._process_backend()
        failing = sum(1 for trial_id, status in busy
                      if status == Status.failed and trial_id in state.running)
        return state.failures + failing >= self.budget.max_failures

    def _shutdown(self, status_of_running: str) -> None:
        stopped = dict(self.state.running)
        try:
            for trial_id, trial in stopped.items():
                self.backend.stop_trial(trial_id=trial_id)
                self._ensure_row(trial)
                self.store.set_trial_status(trial_id, status_of_running,
                                            **self.events.trial_annotations(trial_id),
                                            **self._trial_cost(trial_id))
            self.state.running.clear()
        finally:
            self.events.close()
            self._record_late_results(stopped, status_of_running)
            self._record_late_annotations()

    def _record_late_results(self, stopped: dict[int, Trial], status: str) -> None:
        """Reports the stopped trials made before the experiment ended whose log lines
        arrived after (a job's log trails it): rows like the others, not for the scheduler,
        which is done. Reports made after the end are not the experiment's."""
        end = self._ended_at if self._ended_at is not None else self.state.elapsed
        end = min(end, self.budget.max_wallclock_time)
        added = set()
        for trial_id, result in self.events.late_results():
            trial = stopped.get(trial_id)
            if trial is None:
                continue
            row = self._row(trial, result)
            if row["wallclock_time"] <= end:
                self.store.add_row(row)
                added.add(trial_id)
        for trial_id in added:  # the new rows get the trial's status and annotations
            self.store.set_trial_status(trial_id, status, **self.events.trial_annotations(
                trial_id), **self._trial_cost(trial_id))

    def _trial_cost(self, trial_id: int) -> dict[str, Any]:
        if self.cost is None:
            return {}
        return self.cost.trial_ended(trial_id, self.state.clock.time())

    def _spent(self) -> float | None:
        if self.cost is None:
            return None
        spent = self.cost.spent(self.state.clock.time())
        return None if spent is None else round(spent, 9)

    # --- output ---------------------------------------------------------------------------

    def _ensure_row(self, trial: Trial) -> None:
        """A trial that ends before its first report still gets a row: it shows the trial's
        status, failure reason and what its job cost."""
        if trial.trial_id not in self.state.last_result:
            self.store.add_row(self._row(trial, {}))
            self.state.last_result[trial.trial_id] = {}

    def _row(self, trial: Trial, result: dict[str, Any]) -> dict[str, Any]:
        received = result.get(RECEIVE_TIMESTAMP, self.state.clock.time())
        assert self.state.start_epoch is not None
        return {
            "trial_id": trial.trial_id,
            "status": Status.in_progress,
            "wallclock_time": round(received - self.state.start_epoch
                                    + self.state.elapsed_offset, 4),
            "worker_time": result.get(WORKER_TIME),
            "config": {k: v for k, v in trial.config.items()},
            "metrics": {k: v for k, v in result.items() if not k.startswith("st_")},
        }

    def _snapshot(self, with_cost: bool = True) -> ProgressSnapshot:
        """`with_cost`: also what was spent (a walk over every job where the back-end
        bills: every poll only when a cost budget needs it anyway)."""
        state = self.state
        return ProgressSnapshot(
            elapsed=state.elapsed, budget=self.budget.max_wallclock_time,
            started=state.trials_started, running=len(state.running),
            failed=state.failures, best=state.best, metric=self.metric,
            spent=self._spent() if with_cost else None, max_cost=self.budget.max_cost,
        )

    def _report_progress(self) -> None:
        self.progress.update(self._snapshot(with_cost=self.budget.max_cost is not None))


def _freeze_old_objects() -> None:
    """Python's full garbage collection walks every object alive: at 512 workers and 30k
    finished trials one took up to 0.4 s, in the middle of some trial's decision. What has
    lived this long is mostly finished trials' bookkeeping, kept until the experiment ends:
    after collecting the young garbage, `gc.freeze` takes it out of the collector's walks."""
    gc.collect(1)
    gc.freeze()

