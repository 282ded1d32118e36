"""The end of a job-backed experiment: stop the jobs, release every warm pool, keep the reports
and bills that come in late, all inside the time a stopped orchestrator job is given.

SageMaker's StopTrainingJob sends SIGTERM and SIGKILL 120 s later; a launched orchestrator
gets that, and so does each of its trial jobs. A trial that ignores SIGTERM therefore ends up
to 120 s after our own StopTrainingJob, and waiting for it before releasing its warm pool
cannot fit in the orchestrator's own 120 s. So every running trial job first gets
`KeepAlivePeriodInSeconds` 0 (UpdateTrainingJob; AWS's API reference names no job state for
it, and it applies when the job ends): however late it ends, it keeps no pool. Then the jobs
are stopped, and the close waits, within a budget that fits the grace, for their ends, their
bills and the reports of trials cut at the budget's end; then it releases the pools of jobs
that ended before and reads the time each kept. Whatever is not in by then stays unknown
(a cost of None, never $0), and the results are written and uploaded in the time left.
"""

from __future__ import annotations

import os
import time
from typing import Any

from syne_tune.backend.trial_status import Status

from stbench.model.job_statuses import BUSY_JOB_STATUSES

# SIGTERM to SIGKILL of a stopped training job, as AWS documents it; the local endpoint sets
# STBENCH_STOP_GRACE_SECONDS in its containers to its own `stop_grace_seconds`.
STOP_GRACE_ENV = "STBENCH_STOP_GRACE_SECONDS"
SAGEMAKER_STOP_GRACE = 120.0
WAIT_SHARE = 0.6  # of the grace, for the jobs' ends, bills and late reports
POOL_SHARE = 0.1  # for reading the released pools' kept time; the rest: calls, results upload
BILLING_WAIT_SECONDS = 30.0  # at most, for billable times of jobs that just ended
POOL_POLL_SECONDS = 2.0  # between reads of pools released but not yet terminated
# A pool's job was created at most its runtime, its start-up and its keep-alive period (at
# most 3600 s) before the job that took it: pools are looked for this long (plus our own
# max runtime) before our first job.
POOL_LOOKBACK_SECONDS = 2 * 3600.0


def stop_grace() -> float:
    """The seconds between SIGTERM and SIGKILL this process gets when its job is stopped."""
    try:
        return max(0.0, float(os.environ.get(STOP_GRACE_ENV, SAGEMAKER_STOP_GRACE)))
    except ValueError:
        return SAGEMAKER_STOP_GRACE


class JobClosing:
    """The closing half of `JobBackend` (a mixin: it works on the backend's own state)."""

    def close(self, wait_seconds: float | None = None,
              pool_wait_seconds: float | None = None) -> None:
        """End of the experiment, for any reason: release the running jobs' pools, stop them,
        wait (at most `wait_seconds`, default 60 % of the stop grace) for their ends, bills
        and late reports, release every other warm pool and read the time each kept (at
        most `pool_wait_seconds`, default 10 %). An error with one job never leaves the
        others running or billed: each is noted, then summed up in one line."""
        grace = stop_grace()
        wait_seconds = WAIT_SHARE * grace if wait_seconds is None else wait_seconds
        pool_wait_seconds = POOL_SHARE * grace if pool_wait_seconds is None else pool_wait_seconds
        problems: list[str] = []
        try:
            if self._creating is not None:  # interrupted in CreateTrainingJob: it may exist
                self._try(problems, f"look for job {self._creating}", self.recover)
            running = [(trial_id, jobs) for trial_id, jobs in self._trials.items()
                       if jobs.names and jobs.current not in self._closed]
            if self.template.keep_alive_seconds > 0:  # before the stop: a job may end long
                for name in self.ledger.unbilled():  # after our close (a busy job is unbilled)
                    if self.ledger.status(name) in BUSY_JOB_STATUSES:
                        self._release_pool(problems, name)
            for trial_id, jobs in running:
                if jobs.intent is None:  # not asked to stop yet; its reports until now count
                    self._cut_at_end[trial_id] = None
                    self._try(problems, f"stop {jobs.current}", self._stop_job, trial_id,
                              Status.stopped)
            self._try(problems, "wait for the jobs to end", self._wait_for_jobs, wait_seconds)
            if self.template.keep_alive_seconds > 0:
                self._release_warm_pools(problems, pool_wait_seconds)
                self._find_pool_origins()
        finally:
            self.service.close()
        if problems:
            tag = self.template.tags.get("stbench:experiment-tag", "<tag>")
            self.on_note(f"could not {'; '.join(problems)}: jobs may still run and warm pools "
                         f"stay billed until their keep-alive ends; run `stbench cleanup "
                         f"--experiment_tag {tag}` (or UpdateTrainingJob with "
                         "KeepAlivePeriodInSeconds 0 per pool)")

    def late_results(self) -> list[tuple[int, dict[str, Any]]]:
        """Reports of trials stopped at the experiment's end (not by the scheduler) that were
        read after the loop's last poll, in the order read: the close reads them until each
        job's log is complete, the late-log window passed, or its time budget ran out. Each
        carries `st_receive_timestamp`, the trainer's time of the report: the loop keeps
        those made inside the budget. Handed out once."""
        for trial_id in self._cut_at_end:
            self._take_late(trial_id)
        late, self._late = self._late, []
        return late

    def _take_late(self, trial_id: int) -> None:
        jobs, seen = self._trials[trial_id], self._last_metric_seen_index[trial_id]
        self._late.extend((trial_id, report) for report in jobs.metrics[seen:])
        self._last_metric_seen_index[trial_id] = len(jobs.metrics)

    def _try(self, problems: list[str], what: str, call: Any, *args: Any) -> bool:
        try:
            call(*args)
            return True
        except Exception as err:  # noqa: BLE001 - noted; the other jobs still get their turn
            self.on_note(f"could not {what}: {type(err).__name__}: {err}")
            problems.append(what)
            return False

    def _release_pool(self, problems: list[str], name: str) -> bool:
        return self._try(problems, f"release the warm pool of {name}", self._with_backoff,
                         self.service.release_warm_pool, name)

    def _wait_for_jobs(self, wait_seconds: float) -> None:
        """Until no job holds an instance, the trials cut at the end have all their reports,
        and every bill is known (at most BILLING_WAIT_SECONDS for bills alone)."""
        deadline = time.monotonic() + wait_seconds
        billing_deadline: float | None = None
        while time.monotonic() < deadline:
            if self.busy_trial_ids() or any(t in self._open for t in self._cut_at_end):
                self.service.wait_for_activity(1.0)
                continue
            if not self.ledger.unbilled():
                return
            billing_deadline = billing_deadline or time.monotonic() + BILLING_WAIT_SECONDS
            if time.monotonic() >= billing_deadline:
                return
            self.service.wait_for_activity(1.0)
            self._refresh()
        still = [jobs.current for jobs in self._trials.values()
                 if jobs.names and self.ledger.status(jobs.current) in BUSY_JOB_STATUSES]
        if still:
            self.on_note(f"jobs {', '.join(still)} still stopping {wait_seconds:g} s after "
                         "the stop: their cost stays unknown here (their warm pools were "
                         "released before the stop)")

    def _release_warm_pools(self, problems: list[str], wait_seconds: float) -> None:
        """Every pool that may still be there, then the time each kept: a pool released
        moments ago is read again until the service says it was terminated."""
        released = [name for name in self.ledger.jobs() if not self.ledger.pool_final(name)
                    and self.ledger.status(name) not in BUSY_JOB_STATUSES  # released before
                    and self._release_pool(problems, name)]
        deadline = time.monotonic() + wait_seconds
        while released:
            try:
                pools = self._with_backoff(self.service.warm_pool_status, released)
            except Exception as err:  # noqa: BLE001 - released; only their time is unread
                self.on_note(f"could not read the released warm pools: {type(err).__name__}: "
                             f"{err}; their kept time is counted as last read")
                return
            for name, pool in pools.items():
                self.ledger.update_pool(name, pool)
            released = [name for name in released if not self.ledger.pool_final(name)]
            if released and time.monotonic() >= deadline:
                self.on_note(f"warm pools of {', '.join(released)} not reported terminated "
                             f"{wait_seconds:g} s after their release: their kept time is "
                             "counted as last read")
                return
            time.sleep(min(POOL_POLL_SECONDS, max(0.0, deadline - time.monotonic()))
                       if released else 0.0)

    def _find_pool_origins(self) -> None:
        """Which pool each of our jobs started on, where our own jobs do not say it: a job of
        another experiment whose pool one of ours took names ours as its `ReusedByJob`, and
        nothing of it shows on our job. Asked once, at the end, when every pool our jobs can
        have taken is known; an error only leaves those trials without the link."""
        unknown = [name for name in self.ledger.jobs() if self.ledger.started_on(name) is None]
        created = [self.ledger.description(name).get("CreationTime") for name in unknown]
        known = [float(c) for c in created if c is not None]
        if not unknown or not known:
            return
        since = min(known) - self.template.max_runtime_seconds - POOL_LOOKBACK_SECONDS
        try:
            origins = self._with_backoff(self.service.warm_pool_origins, unknown, since)
        except Exception as err:  # noqa: BLE001 - noted; nothing is left running or billed
            self.on_note(f"could not find the warm pools our trials started on: "
                         f"{type(err).__name__}: {err}")
            return
        for name, pool_job in origins.items():
            self.ledger.set_started_on(name, pool_job)
