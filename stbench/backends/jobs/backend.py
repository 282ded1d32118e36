"""The job backend: trials as training jobs, on SageMaker or the local Docker stand-in.

One code path decides when a job starts, what its status means for the trial, when a worker
is free (a stopping job still holds its instance), and that warm pools are released when
the experiment ends; the job service only carries the calls out.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from syne_tune.backend.trial_backend import TrialBackend
from syne_tune.backend.trial_status import Status, TrialResult
from syne_tune.constants import ST_WORKER_TIMESTAMP

from stbench.backends.jobs.job_requests import JobTemplate, trial_request
from stbench.backends.jobs.job_service import (
    BUSY_JOB_STATUSES,
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    STOPPED,
    STOPPING,
    CapacityError,
    JobService,
    Throttled,
)
from stbench.model.container_contract import TRAINER_TIMESTAMP
from stbench.model.errors import UserError
from stbench.model.naming import job_name

RECEIVE_TIMESTAMP = "st_receive_timestamp"
TRIAL_STATUS = {IN_PROGRESS: Status.in_progress, STOPPING: Status.stopping,
                COMPLETED: Status.completed, FAILED: Status.failed, STOPPED: Status.stopped}


@dataclass
class TrialJobs:
    """The jobs one trial ran (a paused trial resumes in a new job) and what we asked of them."""

    names: list[str] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    intent: str | None = None  # Status.stopped or Status.paused once we stop the current job
    description: dict[str, Any] = field(default_factory=dict)
    ended_at: float | None = None  # when we first saw the current job in a terminal status

    @property
    def current(self) -> str:
        return self.names[-1]


class JobBackend(TrialBackend):
    def __init__(self, service: JobService, template: JobTemplate, job_base: str,
                 first_trial_id: int = 0, capacity_wait_seconds: float = 30.0,
                 capacity_patience_seconds: float = 3600.0, on_note: Any = None,
                 throttle_retries: int = 8, throttle_base_seconds: float = 0.2,
                 prices: dict[str, float] | None = None):
        super().__init__()
        self.service = service
        self.template = template
        self.job_base = job_base
        self.first_trial_id = first_trial_id
        self.capacity_wait_seconds = capacity_wait_seconds
        self.capacity_patience_seconds = capacity_patience_seconds
        self.on_note = on_note or (lambda message: None)
        self.throttle_retries = throttle_retries
        self.throttle_base_seconds = throttle_base_seconds
        self.prices = prices
        # Logs may trail a job's end (CloudWatch): keep reading reports this long after it.
        self.metrics_delay = service.metrics_delay_seconds
        self._trials: dict[int, TrialJobs] = {}
        self._terminal: set[str] = set()

    def new_trial_id(self) -> int:
        return self.first_trial_id + len(self.trial_ids)

    # --- starting jobs ---------------------------------------------------------------------

    def _schedule(self, trial_id: int, config: dict[str, Any]) -> None:
        jobs = self._trials.setdefault(trial_id, TrialJobs())
        name = job_name(self.job_base, trial_id, len(jobs.names))
        request = trial_request(self.template, name, trial_id, config)
        self._create_with_patience(request)
        jobs.names.append(name)
        jobs.intent = None
        jobs.description = {"TrainingJobStatus": IN_PROGRESS}

    def _with_backoff(self, call: Any, *args: Any) -> Any:
        """Throttling is never a trial failure: back off exponentially (with jitter), retry."""
        for attempt in range(self.throttle_retries + 1):
            try:
                return call(*args)
            except Throttled:
                if attempt == self.throttle_retries:
                    raise
                pause = min(30.0, self.throttle_base_seconds * 2**attempt)
                time.sleep(pause * random.uniform(0.5, 1.0))
        raise AssertionError("unreachable")

    def _create_with_patience(self, request: dict[str, Any]) -> None:
        """ResourceLimitExceeded is not a trial failure: wait for capacity and try again."""
        deadline = time.monotonic() + self.capacity_patience_seconds
        while True:
            try:
                self._with_backoff(self.service.create_training_job, request)
                return
            except CapacityError as err:
                if time.monotonic() > deadline:
                    raise UserError(
                        f"{err}; still no capacity after {self.capacity_patience_seconds:g} s: "
                        "raise that quota in Service Quotas or lower --n_workers"
                    ) from None
                self.on_note(f"no capacity ({err}); retrying in {self.capacity_wait_seconds:g} s")
                time.sleep(self.capacity_wait_seconds)

    # --- status and metrics ----------------------------------------------------------------

    def _refresh(self, trial_ids: list[int]) -> None:
        """One describe call and one metrics call for all these trials' current jobs."""
        names = [self._trials[t].current for t in trial_ids
                 if t in self._trials and self._trials[t].current not in self._terminal]
        if not names:
            return
        try:  # status first: reports read afterwards include everything before the end
            descriptions = self.service.describe_training_jobs(names)
            reports = self.service.read_metrics(names)
        except Throttled:
            self.on_note("the job service throttles us; skipping this poll")
            return
        by_name = {self._trials[t].current: t for t in trial_ids if t in self._trials}
        now = time.monotonic()
        for name, description in descriptions.items():
            jobs = self._trials[by_name[name]]
            jobs.description = description
            if description["TrainingJobStatus"] not in BUSY_JOB_STATUSES:
                jobs.ended_at = jobs.ended_at or now
                if now - jobs.ended_at >= self.metrics_delay:
                    self._terminal.add(name)
        for name, new in reports.items():
            for report in new:
                received = report.get(TRAINER_TIMESTAMP, time.time())
                report.setdefault(RECEIVE_TIMESTAMP, received)
                report.setdefault(ST_WORKER_TIMESTAMP, received)  # Syne Tune sorts by it
            self._trials[by_name[name]].metrics.extend(new)

    def _trial_status(self, jobs: TrialJobs) -> str:
        if jobs.current not in self._terminal:  # running, stopping, or its logs may still trail
            return Status.in_progress if jobs.intent is None else Status.stopping
        if jobs.intent is not None:
            return jobs.intent  # stopped (or paused) by us, whatever the exit code said
        return TRIAL_STATUS[jobs.description["TrainingJobStatus"]]

    def _all_trial_results(self, trial_ids: list[int]) -> list[TrialResult]:
        self._refresh(trial_ids)
        results = []
        for trial_id in trial_ids:
            jobs = self._trials[trial_id]
            end = jobs.description.get("TrainingEndTime")
            results.append(self._trial_dict[trial_id].add_results(
                metrics=list(jobs.metrics), status=self._trial_status(jobs),
                training_end_time=datetime.fromtimestamp(end) if end else None,
            ))
        return results

    def busy_trial_ids(self) -> list[tuple[int, str]]:
        """Trials whose job still holds an instance, stopping ones included."""
        active = [t for t, jobs in self._trials.items() if jobs.current not in self._terminal]
        self._refresh(active)
        return [(t, self._trial_status(self._trials[t])) for t in active
                if self._trials[t].description.get("TrainingJobStatus") in BUSY_JOB_STATUSES]

    def failure_reason(self, trial_id: int) -> str:
        return str(self._trials[trial_id].description.get("FailureReason", ""))

    def trial_annotations(self, trial_id: int) -> dict[str, Any]:
        """Recorded with the trial's results: its job, billing and warm-pool use."""
        jobs = self._trials[trial_id]
        description = jobs.description
        pool = description.get("WarmPoolStatus") or {}
        retained = pool.get("ResourceRetainedBillableTimeInSeconds") or 0
        billable = description.get("BillableTimeInSeconds")
        cost = None
        if self.prices is not None and billable is not None:
            from stbench.model.prices import trial_cost

            cost = trial_cost(self.prices, self.template.instance_type,
                              self.template.instance_count, billable, retained)
        return {
            "job_name": jobs.current,
            "cost_usd": cost,
            "billable_seconds": billable,
            "warm_pool_status": pool.get("Status"),
            "warm_pool_reused_by": pool.get("ReusedByJob"),
            "started_on_warm_pool_of": description.get("WarmPoolReusedFrom"),
        }

    # --- stopping ------------------------------------------------------------------------

    def _stop_job(self, trial_id: int, intent: str) -> None:
        jobs = self._trials[trial_id]
        jobs.intent = intent
        if jobs.current not in self._terminal:
            self._with_backoff(self.service.stop_training_job, jobs.current)

    def _stop_trial(self, trial_id: int, result: dict | None) -> None:
        self._stop_job(trial_id, Status.stopped)

    def _pause_trial(self, trial_id: int, result: dict | None) -> None:
        self._stop_job(trial_id, Status.paused)

    def _resume_trial(self, trial_id: int) -> None:
        pass  # the new job restores the trial's checkpoint prefix

    def wait_for_activity(self, timeout: float) -> None:
        self.service.wait_for_activity(timeout)

    def close(self, wait_seconds: float = 150.0) -> None:
        """End of the experiment, for any reason: stop jobs, then release every warm pool."""
        try:
            for trial_id, jobs in self._trials.items():
                if jobs.current not in self._terminal:
                    self._stop_job(trial_id, jobs.intent or Status.stopped)
            deadline = time.monotonic() + wait_seconds
            while self.busy_trial_ids() and time.monotonic() < deadline:
                self.service.wait_for_activity(1.0)
            for jobs in self._trials.values():
                for name in jobs.names:
                    self._with_backoff(self.service.release_warm_pool, name)
        finally:
            self.service.close()

    def copy_checkpoint(self, src_trial_id: int, tgt_trial_id: int) -> None:
        raise NotImplementedError("checkpoint copies between trials (PBT) are not supported yet")

    def delete_checkpoint(self, trial_id: int) -> None:
        pass  # checkpoints stay in the trial's prefix, where a resume looks for them

    def stdout(self, trial_id: int) -> list[str]:
        return []

    def stderr(self, trial_id: int) -> list[str]:
        return []
