"""The job backend: trials as training jobs, on SageMaker or the local Docker stand-in.

One code path decides when a job starts, what its status means for the trial, when a worker
is free (a stopping job still holds its instance), when a trial's reports are all in, and
that warm pools are released when the experiment ends; the job service only carries the
calls out. What each trial's jobs cost is kept in the `JobLedger`.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from syne_tune.backend.trial_backend import TrialBackend
from syne_tune.backend.trial_status import Status, TrialResult
from syne_tune.constants import ST_WORKER_TIMESTAMP

from stbench.backends.jobs.closing import JobClosing
from stbench.backends.jobs.job_ledger import JobLedger, trials_to_adopt
from stbench.backends.jobs.job_requests import JobTemplate, trial_request
from stbench.backends.jobs.job_service import (
    CapacityError,
    JobDescription,
    JobService,
    RetryCounts,
    Throttled,
)
from stbench.backends.jobs.trial_logs import TrialLogs
from stbench.model.container_contract import TRAINER_TIMESTAMP
from stbench.model.errors import UserError
from stbench.model.job_statuses import (
    BUSY_JOB_STATUSES,
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    STOPPED,
    STOPPING,
    TERMINAL,
)
from stbench.model.naming import job_name

RECEIVE_TIMESTAMP = "st_receive_timestamp"
TRIAL_STATUS = {IN_PROGRESS: Status.in_progress, STOPPING: Status.stopping,
                COMPLETED: Status.completed, FAILED: Status.failed, STOPPED: Status.stopped}
FINAL_TRIAL_STATUSES = (Status.completed, Status.failed, Status.stopped)  # never resumed
FIRST_CAPACITY_WAIT_SECONDS = 1.0  # then doubling up to capacity_wait_seconds


@dataclass
class TrialJobs:
    """The jobs one trial ran (a paused trial resumes in a new job) and what we asked of them."""

    names: list[str] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    intent: str | None = None  # Status.stopped or Status.paused once we stop the current job
    ended_at: float | None = None  # when we first saw the current job in a terminal status

    @property
    def current(self) -> str:
        return self.names[-1]


class JobBackend(JobClosing, TrialBackend):
    def __init__(self, service: JobService, template: JobTemplate, job_base: str,
                 first_trial_id: int = 0, capacity_wait_seconds: float = 30.0,
                 capacity_patience_seconds: float = 3600.0, on_note: Any = None,
                 throttle_retries: int = 8, throttle_base_seconds: float = 0.2,
                 prices: dict[str, float] | None = None, logs_dir: Path | None = None,
                 retries: RetryCounts | None = None):
        """`logs_dir`: where each trial's `<id>/std.out` keeps its jobs' logs (None: not kept);
        `retries`: the counts to add to, shared with an adapter that counts its own retries."""
        super().__init__()
        self.retries = retries or RetryCounts()
        self.logs = TrialLogs(logs_dir) if logs_dir is not None else None
        self.service = service
        self.template = template
        self.job_base = job_base
        self.first_trial_id = first_trial_id
        self.capacity_wait_seconds = capacity_wait_seconds
        self.capacity_patience_seconds = capacity_patience_seconds
        self.on_note = on_note or (lambda message: None)
        self.throttle_retries = throttle_retries
        self.throttle_base_seconds = throttle_base_seconds
        # Logs may trail a job's end (CloudWatch): reports are awaited at most this long.
        self.metrics_delay = service.metrics_delay_seconds
        self.ledger = JobLedger(template, prices)
        self._trials: dict[int, TrialJobs] = {}
        self._closed: set[str] = set()  # jobs whose status and reports are final
        self._creating: str | None = None  # the job being created: a signal may leave it so
        # trials whose current job is not closed: a poll's work, never the finished trials
        self._open: dict[int, None] = {}
        # the loop asks busy_trial_ids right after fetch_status_results: that poll answers
        # it too, where a second one put 512 more job names through the service before the
        # first new trial could start
        self._poll_unused = False
        self._budget_end: float | None = None  # epoch seconds (end_by)
        # trials stopped at the experiment's end, not by the scheduler: their reports read
        # later are still the loop's (late_results), and are awaited in the close
        self._cut_at_end: dict[int, None] = {}
        self._late: list[tuple[int, dict[str, Any]]] = []

    def end_by(self, deadline: float) -> None:
        """The experiment's budget ends at `deadline` (epoch seconds, time.time()): no wait
        for capacity runs past it."""
        self._budget_end = deadline

    def new_trial_id(self) -> int:
        return self.first_trial_id + len(self.trial_ids)

    def recover(self) -> None:
        """A resumed experiment: take over the jobs an earlier run of it left (one killed with
        kill -9, or an orchestrator job restarted after its instance failed). New trial ids
        start past every one of them, so no trial id and no job name repeats, whatever the
        results had recorded. Those still running are stopped now; they hold a worker until
        they end, and their warm pools are released at the end, as our own are. The trials
        whose jobs the service can still bill (`trials_to_adopt`) go into the ledger. Also at
        the end of a run that a stop signal interrupted in CreateTrainingJob: the job may exist."""
        previous = self._with_backoff(self.service.previous_jobs)
        self._creating = None
        last, adopted = trials_to_adopt(previous, set(self.ledger.trial_of))
        self.first_trial_id = max(self.first_trial_id, last + 1)
        for trial_id, names in adopted.items():
            jobs = self._trials.setdefault(trial_id, TrialJobs(intent=Status.stopped))
            for name in names:
                self._adopt(jobs, trial_id, name, previous[name])

    def _adopt(self, jobs: TrialJobs, trial_id: int, name: str,
               description: JobDescription) -> None:
        jobs.names.append(name)
        self.ledger.adopt(trial_id, name, description)
        if description.get("TrainingJobStatus") in TERMINAL and not description.get(
                "WarmPoolStatus"):
            self.ledger.update_pool(name, None)  # described now: no pool, nothing to release
        self._closed.add(name)  # nobody awaits its reports: its trial ended or was cut short
        if description.get("TrainingJobStatus") == IN_PROGRESS:
            self.on_note(f"stopping job {name}: it runs, but not for this run's trials")
            self._with_backoff(self.service.stop_training_job, name)

    # --- starting jobs ---------------------------------------------------------------------

    def _schedule(self, trial_id: int, config: dict[str, Any]) -> None:
        """Create the trial's next job. When the budget ends while waiting for capacity,
        the trial is left unstarted, without a job: Syne Tune already counts it, so it shows
        as in progress and holds its worker (nothing else starts) until the loop, at the
        budget's end moments later, stops it; its row then says stopped, with no job and
        nothing spent (a paused trial whose resume found no capacity stays paused). The
        experiment ends `completed`, by its time budget."""
        jobs = self._trials.get(trial_id, TrialJobs())
        name = job_name(self.job_base, trial_id, len(jobs.names))
        request = trial_request(self.template, name, trial_id, config)
        self._creating = name
        created = self._create_with_patience(request)
        self._creating = None
        self._trials[trial_id] = jobs
        if not created:  # a paused trial stays paused
            return
        jobs.names.append(name)
        jobs.intent = jobs.ended_at = None
        self.ledger.add(trial_id, name)
        self._open[trial_id] = None

    def _with_backoff(self, call: Any, *args: Any) -> Any:
        """Throttling is never a trial failure: back off exponentially (with jitter), retry."""
        for attempt in range(self.throttle_retries + 1):
            try:
                return call(*args)
            except Throttled:
                if attempt == self.throttle_retries:
                    raise
                self.retries.backoffs += 1
                pause = min(30.0, self.throttle_base_seconds * 2**attempt)
                time.sleep(pause * random.uniform(0.5, 1.0))
        raise AssertionError("unreachable")

    def _create_with_patience(self, request: dict[str, Any]) -> bool:
        """ResourceLimitExceeded is not a trial failure: wait for capacity (1 s, then twice as
        long each time, up to `capacity_wait_seconds`) and try again. A quota that never frees
        up ends the experiment after `capacity_patience_seconds`, with one line saying why.
        No wait runs past the budget's end (`end_by`): then False, nothing created."""
        deadline = time.monotonic() + self.capacity_patience_seconds
        wait = min(FIRST_CAPACITY_WAIT_SECONDS, self.capacity_wait_seconds)
        while True:
            if self._budget_left() <= 0:
                self.on_note(f"not starting {request['TrainingJobName']}: the budget ended")
                return False
            try:
                self._with_backoff(self.service.create_training_job, request)
                return True
            except CapacityError as err:
                self.retries.capacity_refusals += 1
                left = deadline - time.monotonic()
                budget_left = self._budget_left()
                if budget_left <= 0:
                    self.on_note(f"no capacity for {request['TrainingJobName']} ({err}) "
                                 "before the budget ended: not started")
                    return False
                if left <= 0:
                    raise UserError(
                        f"no capacity to start a trial job in {self.capacity_patience_seconds:g}"
                        f" s of retrying: {err}; raise that quota in Service Quotas, lower "
                        "--n_workers, or wait longer with --max_capacity_wait"
                    ) from None
                self.on_note(f"no capacity for {request['TrainingJobName']} ({err}); "
                             f"retrying in {min(wait, left, budget_left):.3g} s")
                time.sleep(min(wait, left, budget_left))
                wait = min(2 * wait, self.capacity_wait_seconds)

    def _budget_left(self) -> float:
        return float("inf") if self._budget_end is None else self._budget_end - time.time()

    # --- status and metrics ----------------------------------------------------------------

    def _refresh(self) -> None:
        """One status call for every job still open or not yet billed, one metrics call for
        every job whose reports are still awaited."""
        awaited = [self._trials[trial_id].current for trial_id in self._open]
        names = list(dict.fromkeys(awaited + self.ledger.unbilled()))
        if not names:
            return
        try:  # status first: reports read afterwards include everything before the end
            descriptions = self.service.describe_training_jobs(names)
            reports = self.service.read_metrics(awaited) if awaited else {}
        except Throttled:
            self.retries.backoffs += 1
            self.on_note("the job service throttles us; skipping this poll")
            return
        for name, description in descriptions.items():
            self.ledger.update(name, description)
        for name, new in reports.items():
            for report in new:
                received = report.get(TRAINER_TIMESTAMP, time.time())
                report.setdefault(RECEIVE_TIMESTAMP, received)
                report.setdefault(ST_WORKER_TIMESTAMP, received)  # Syne Tune sorts by it
            self._trials[self.ledger.trial_of[name]].metrics.extend(new)
        now = time.monotonic()
        for name in awaited:
            jobs = self._trials[self.ledger.trial_of[name]]
            if self.ledger.status(name) not in BUSY_JOB_STATUSES:
                jobs.ended_at = jobs.ended_at or now
                if self._reports_final(name, jobs, now):
                    self._closed.add(name)
                    del self._open[self.ledger.trial_of[name]]
                    if jobs.intent == Status.stopped:  # retired when we stopped it
                        self._let_go_of_reports(self.ledger.trial_of[name])
                    self._keep_log(name)

    def _reports_final(self, name: str, jobs: TrialJobs, now: float) -> bool:
        """An ended job's reports are final once all are in, or once we stopped its trial
        (nobody needs them), or after `metrics_delay`: then the trial keeps what it has."""
        trial_id = self.ledger.trial_of[name]
        if self.service.metrics_complete(name) or (
                jobs.intent is not None and trial_id not in self._cut_at_end):
            return True
        waited = now - (jobs.ended_at or now)
        if waited < self.metrics_delay:
            return False
        self.on_note(f"job {name} ended {waited:.0f} s ago and its log still lacks reports "
                     "(the trainer's end line, or reports it announced, never arrived): "
                     f"trial {trial_id} keeps the {len(jobs.metrics)} read")
        return True

    def _keep_log(self, name: str) -> None:
        """The ended job's whole log into its trial's std.out, read once; a log that cannot be
        read is noted, never the trial's or the experiment's failure."""
        if self.logs is None:
            return
        trial_id = self.ledger.trial_of[name]
        try:
            lines = self._with_backoff(self.service.job_log, name)
            self.logs.add_job(trial_id, name, lines, first=name == self._trials[trial_id].names[0])
        except Exception as err:  # noqa: BLE001 - noted; the trial's results stand
            self.on_note(f"could not keep the log of job {name}: {type(err).__name__}: {err}")

    def _trial_status(self, jobs: TrialJobs) -> str:
        if not jobs.names:  # left unstarted at the budget's end
            return jobs.intent or Status.in_progress
        if jobs.current not in self._closed:  # running, stopping, or its logs may still trail
            return Status.in_progress if jobs.intent is None else Status.stopping
        if jobs.intent is not None:
            return jobs.intent  # stopped (or paused) by us, whatever the exit code said
        return TRIAL_STATUS[self.ledger.status(jobs.current)]

    def fetch_status_results(self, trial_ids: list[int]) -> Any:
        """Syne Tune's, then the reports of trials that ended for good are let go: the loop
        has them, and 100k finished trials must not keep theirs in memory. Its poll also
        answers the next `busy_trial_ids`."""
        statuses, results = super().fetch_status_results(trial_ids)
        self._poll_unused = True
        for trial_id, (_, status) in statuses.items():
            if status in FINAL_TRIAL_STATUSES:
                self._let_go_of_reports(trial_id)
        return statuses, results

    def _let_go_of_reports(self, trial_id: int) -> None:
        if trial_id in self._cut_at_end:
            self._take_late(trial_id)
        self._trials[trial_id].metrics = []
        self._trial_dict[trial_id].metrics = []

    def _all_trial_results(self, trial_ids: list[int]) -> list[TrialResult]:
        self._refresh()
        results = []
        for trial_id in trial_ids:
            jobs = self._trials[trial_id]
            end = jobs.names and self.ledger.description(jobs.current).get("TrainingEndTime")
            results.append(self._trial_dict[trial_id].add_results(
                metrics=list(jobs.metrics), status=self._trial_status(jobs),
                training_end_time=datetime.fromtimestamp(end) if end else None,
            ))
        return results

    def busy_trial_ids(self) -> list[tuple[int, str]]:
        """Trials whose job still holds an instance, stopping ones included; and, as
        `failed`, trials whose job failed while its last reports are still awaited: they keep
        their worker until the failure is counted, so no trial starts that max_failures
        would have forbidden."""
        if not self._poll_unused:
            self._refresh()
        self._poll_unused = False
        busy = []
        for name in self.ledger.unbilled():  # a job that holds an instance is not billed yet
            trial_id = self.ledger.trial_of[name]
            jobs = self._trials[trial_id]
            if name == jobs.current and self.ledger.status(name) in BUSY_JOB_STATUSES:
                busy.append((trial_id, self._trial_status(jobs)))
        busy += [(trial_id, Status.failed) for trial_id in self._open
                 if self.ledger.status(self._trials[trial_id].current) == FAILED]
        busy += [(trial_id, Status.in_progress) for trial_id, jobs in self._trials.items()
                 if not jobs.names and jobs.intent is None]  # unstarted at the budget's end
        return busy

    def retry_counts(self) -> dict[str, int]:
        """Throttles and capacity refusals ridden out so far (the experiment's metadata)."""
        return self.retries.as_dict()

    def failure_reason(self, trial_id: int) -> str:
        jobs = self._trials[trial_id]
        return str(self.ledger.description(jobs.current).get("FailureReason", "")
                   if jobs.names else "")

    def trial_annotations(self, trial_id: int) -> dict[str, Any]:
        """Recorded with the trial's results: its job, billing and warm-pool use."""
        if not self._trials[trial_id].names:  # unstarted: no job, nothing spent
            return {"job_name": None, "billable_seconds": 0,
                    "cost_usd": None if self.ledger.prices is None else 0.0}
        return self.ledger.annotations(trial_id)

    def spent_usd(self) -> float | None:
        """What the experiment's jobs have cost so far, running ones included (None: the
        instance type has no price)."""
        return self.ledger.spent_usd()

    def late_annotations(self) -> dict[int, dict[str, Any]]:
        """Annotations of retired trials that changed since: billing known once their jobs
        ended, warm-pool time once their pools were reused or released."""
        return self.ledger.late_annotations()

    # --- stopping ------------------------------------------------------------------------

    def _stop_job(self, trial_id: int, intent: str) -> None:
        jobs = self._trials[trial_id]
        if jobs.names and self.ledger.status(jobs.current) == IN_PROGRESS:
            self._with_backoff(self.service.stop_training_job, jobs.current)
        jobs.intent = intent  # once asked: a stop that failed is tried again by the close

    def _stop_trial(self, trial_id: int, result: dict | None) -> None:
        """The scheduler stops a trial on a result; a stop without one is the experiment's
        end: the reports that trial made until then still count (`late_results`)."""
        if result is None and self._trials[trial_id].names:
            self._cut_at_end[trial_id] = None
        self._stop_job(trial_id, Status.stopped)

    def _pause_trial(self, trial_id: int, result: dict | None) -> None:
        self._stop_job(trial_id, Status.paused)

    def _resume_trial(self, trial_id: int) -> None:
        pass  # the new job restores the trial's checkpoint prefix

    def wait_for_activity(self, timeout: float) -> None:
        self.service.wait_for_activity(timeout)

    def copy_checkpoint(self, src_trial_id: int, tgt_trial_id: int) -> None:
        raise NotImplementedError("checkpoint copies between trials (PBT) are not supported yet")

    def delete_checkpoint(self, trial_id: int) -> None:
        pass  # checkpoints stay in the trial's prefix, where a resume looks for them

    def stdout(self, trial_id: int) -> list[str]:
        """The logs of the trial's ended jobs (stdout and stderr merged, as on SageMaker)."""
        return self.logs.lines(trial_id) if self.logs is not None else []

    def stderr(self, trial_id: int) -> list[str]:
        return []
