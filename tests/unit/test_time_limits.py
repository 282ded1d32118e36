"""Time limits of the job backend, against an in-memory job service: a close that fits the
stop grace and leaves no pool, capacity waits that end at the budget's end, reports made
before the budget's end that arrive during the close, and the cost of jobs a resumed
experiment takes over."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from syne_tune.backend.trial_status import Status
from test_job_backend import PRICES, TEMPLATE, FakeJobService

from stbench.backends.jobs import closing
from stbench.backends.jobs.backend import JobBackend
from stbench.backends.jobs.job_service import CapacityError
from stbench.methods.registry import MethodContext, get_method
from stbench.model.catalog import load_benchmark
from stbench.model.container_contract import TRAINER_TIMESTAMP
from stbench.model.job_statuses import COMPLETED, STOPPED, STOPPING
from stbench.orchestration.experiment import ExperimentLoop
from stbench.orchestration.loop_state import Budget
from stbench.orchestration.progress import Progress
from stbench.orchestration.store import METADATA, ResultStore


class NoCapacity(FakeJobService):
    """A training-job quota that never frees up."""

    def create_training_job(self, request: dict[str, Any]) -> None:
        self.calls.append(("create", request["TrainingJobName"]))
        raise CapacityError("ResourceLimitExceeded: 'ml.c5.large for training job usage'")


class IgnoresSigterm(FakeJobService):
    """Stopped jobs stay Stopping (a trial that ignores SIGTERM ends 120 s later)."""

    def stop_training_job(self, name: str) -> None:
        self.calls.append(("stop", name))
        self.jobs[name]["TrainingJobStatus"] = STOPPING


def test_close_releases_running_pools_before_the_stop_and_fits_the_grace(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A job that will not stop in time keeps no pool: KeepAlivePeriodInSeconds 0 goes to
    it before StopTrainingJob, and the close ends within its share of the stop grace."""
    monkeypatch.setenv(closing.STOP_GRACE_ENV, "2")
    service = IgnoresSigterm()
    notes: list[str] = []
    backend = JobBackend(service, TEMPLATE, "base", capacity_wait_seconds=0,
                         on_note=notes.append)
    backend.start_trial({"x": 1.0})
    name = service.calls[0][1]
    started = time.monotonic()
    backend.close()
    took = time.monotonic() - started
    assert took < 2 * (closing.WAIT_SHARE + closing.POOL_SHARE) + 0.5
    job_calls = [call for call in service.calls if call[1] == name and call[0] != "create"]
    assert job_calls[:2] == [("release", name), ("stop", name)]
    assert any("still stopping" in note and name in note for note in notes)
    assert not any("not reported terminated" in note for note in notes)


def test_a_capacity_wait_ends_at_the_budget_and_leaves_the_trial_unstarted() -> None:
    service = NoCapacity()
    backend = JobBackend(service, TEMPLATE, "base", capacity_wait_seconds=0.05,
                         capacity_patience_seconds=3600, prices=PRICES)
    backend.end_by(time.time() + 0.4)
    started = time.monotonic()
    trial = backend.start_trial({"x": 1.0})
    assert time.monotonic() - started < 1.0, "no wait runs past the budget's end"
    assert backend.busy_trial_ids() == [(trial.trial_id, Status.in_progress)]
    statuses, results = backend.fetch_status_results([trial.trial_id])
    assert statuses[trial.trial_id][1] == Status.in_progress and results == []
    backend.stop_trial(trial.trial_id)
    statuses, _ = backend.fetch_status_results([trial.trial_id])
    assert statuses[trial.trial_id][1] == Status.stopped
    assert backend.trial_annotations(trial.trial_id) == {
        "job_name": None, "billable_seconds": 0, "cost_usd": 0.0}
    calls = len(service.calls)
    backend.start_trial({"x": 2.0})  # the budget ended: not even tried
    assert len(service.calls) == calls
    backend.close(wait_seconds=0, pool_wait_seconds=0)
    assert not [c for c in service.calls if c[0] == "stop"]


def test_an_experiment_whose_capacity_wait_reaches_the_budget_completes(tmp_path: Path) -> None:
    """The loop ends it `completed`, by its time budget, not failed for lack of capacity."""
    bench = load_benchmark("synthetic_curves").with_fixed_values({"epochs": "5"})
    scheduler = get_method("RS").make_scheduler(MethodContext.for_benchmark(bench, 3))
    backend = JobBackend(NoCapacity(), TEMPLATE, "sim", capacity_wait_seconds=0.05,
                         capacity_patience_seconds=3600)
    store = ResultStore(tmp_path / "exp", {"status": "new"})
    loop = ExperimentLoop(scheduler, backend, store, Budget(1.0, 2, 3), bench.metric,
                          bench.mode, Progress("exp", stream=io.StringIO()))
    backend.end_by(time.time() + 1.0)  # what the loop tells the backend when it starts
    started = time.monotonic()
    outcome = loop.run()
    assert time.monotonic() - started < 3.0
    metadata = json.loads((tmp_path / "exp" / METADATA).read_text())
    assert outcome.status == metadata["status"] == "completed"
    assert metadata["reason"] == "time budget of 1 s used"
    assert {row["status"] for row in store.rows} <= {Status.stopped}


def test_reports_made_before_the_end_and_read_in_the_close_are_handed_out() -> None:
    """The budget ends between a report and the poll that reads it (its log line comes
    later): the close reads the stopped job's log until it is complete, and hands the
    report out with the trainer's time; a trial the scheduler stopped gets none."""
    service = FakeJobService()
    service.metrics_delay_seconds = 60
    backend = JobBackend(service, TEMPLATE, "base", capacity_wait_seconds=0)
    cut, dropped = backend.start_trial({"x": 1.0}), backend.start_trial({"x": 2.0})
    first, second = (c[1] for c in service.calls if c[0] == "create")
    backend.fetch_status_results([cut.trial_id, dropped.trial_id])
    made_at = time.time() - 0.5
    backend.stop_trial(dropped.trial_id, result={"epoch": 1})  # the scheduler's decision
    backend.stop_trial(cut.trial_id)  # the budget ended
    for name in (first, second):
        service.jobs[name]["TrainingJobStatus"] = STOPPED
        service.incomplete.add(name)

    def late_log(timeout: float) -> None:  # the last lines arrive a moment later
        for name in service.incomplete & {first, second}:
            service.metrics[name] = [{"epoch": 2, "loss": 0.3, TRAINER_TIMESTAMP: made_at}]
            service.incomplete.discard(name)

    service.wait_for_activity = late_log  # type: ignore[method-assign]
    backend.close(wait_seconds=5, pool_wait_seconds=0)
    late = backend.late_results()
    assert [(trial_id, r["epoch"]) for trial_id, r in late] == [(cut.trial_id, 2)]
    assert late[0][1]["st_receive_timestamp"] == made_at
    assert backend.late_results() == [], "handed out once"


def test_a_resumed_experiment_writes_the_cost_of_jobs_that_ended_before_the_kill() -> None:
    """kill -9 after a trial's job ended and before its bill was read: the resumed run
    takes the trial over and hands its cost out, though the job kept no pool."""
    service = FakeJobService()
    service.jobs["base-t000000-r00"] = {"TrainingJobStatus": COMPLETED,
                                        "BillableTimeInSeconds": 90}
    backend = JobBackend(service, TEMPLATE, "base", capacity_wait_seconds=0, prices=PRICES)
    backend.recover()
    late = backend.late_annotations()
    assert late[0]["billable_seconds"] == 90
    assert late[0]["cost_usd"] == pytest.approx(0.36 * 90 / 3600)
    assert late[0]["job_name"] == "base-t000000-r00"


def test_a_paused_trial_whose_resume_meets_the_budgets_end_stays_paused() -> None:
    """Not failed: its earlier job's exit status (a SIGTERM may make it non-zero) says
    nothing about the resume that never started."""
    service = FakeJobService()
    backend = JobBackend(service, TEMPLATE, "base", capacity_wait_seconds=0.05)
    trial = backend.start_trial({"x": 1.0})
    backend.pause_trial(trial.trial_id)
    service.jobs[service.calls[0][1]]["TrainingJobStatus"] = "Failed"
    backend.fetch_status_results([trial.trial_id])
    service.capacity_failures = 1000
    backend.end_by(time.time() + 0.2)
    backend.resume_trial(trial.trial_id)
    statuses, _ = backend.fetch_status_results([trial.trial_id])
    assert statuses[trial.trial_id][1] == Status.paused
