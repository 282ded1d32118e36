"""SageMaker adapter of the job-service port: boto3 only, a flat number of calls per poll.

Syne Tune 0.13 asked SageMaker `Search` for every 20 jobs and read each job's log streams,
so a poll cost about 3 calls per worker and hit API throttling at scale. Here a poll is one
paginated `ListTrainingJobs` over the experiment's trial-job prefix `<base>-t`, restricted to
jobs modified since the previous poll, plus one `DescribeTrainingJob` per job when it ends
(failure reason, billable time, warm pool), plus one `FilterLogEvents` for the metrics of all
jobs (see `sagemaker_metrics`). Answers come from a cache refreshed at most once per
`poll_seconds`. Whether LastModifiedTime moves when only a warm pool changes is not
documented, so a pool's status and retained time are read with `DescribeTrainingJob` where
they matter: at the job's end, at its release and at the experiment's end. Then, too, one
paginated `ListTrainingJobs` of the account's reused pools says which pool each of our jobs
started on, where the pool was another experiment's (`warm_pool_origins`).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError

from stbench.backends.aws import THROTTLING_CODES, error_code, error_message, retrying
from stbench.backends.jobs.job_service import CapacityError, JobDescription, JobRequest, RetryCounts
from stbench.backends.jobs.sagemaker_logs import read_job_log
from stbench.backends.jobs.sagemaker_metrics import (
    METRICS_MARGIN_SECONDS,
    LogMetricsReader,
    raise_if_throttled,
    server_time,
)
from stbench.model.job_statuses import (
    FINAL_POOL_STATUSES,
    IN_PROGRESS,
    STOPPING,
    TERMINAL,
    WARM_AVAILABLE,
    WARM_IN_USE,
    WARM_REUSED,
)
from stbench.model.naming import is_trial_job, trial_job_prefix

LIST_PAGE_SIZE = 100  # the API's maximum
# The list index lags job updates by a few seconds: each listing reaches back this far before
# the previous one (on the server's clock). Repeats are cheap: unchanged summaries are no-ops.
LIST_MARGIN_SECONDS = 30.0
INITIAL_LOOKBACK_SECONDS = 300.0  # first listing: tolerate this much local clock skew
# A job that ends is described until BillableTimeInSeconds shows, at most this often.
ENDED_DESCRIBES = 3
# CloudWatch may deliver a job's log lines long after it ended; reports stay awaited this long
# unless the trainer's end line and every report it announced arrived before.
LOG_PATIENCE_SECONDS = 300.0
SUMMARY_FIELDS = ("TrainingJobStatus", "SecondaryStatus", "WarmPoolStatus", "CreationTime",
                  "TrainingEndTime", "LastModifiedTime")
DESCRIBE_FIELDS = ("TrainingJobName", "TrainingJobStatus", "SecondaryStatus", "FailureReason",
                   "CreationTime", "TrainingStartTime", "TrainingEndTime", "LastModifiedTime",
                   "BillableTimeInSeconds", "ResourceConfig", "WarmPoolStatus",
                   "SecondaryStatusTransitions")
# Words of the ValidationExceptions UpdateTrainingJob answers when there is no pool to end
# (no keep-alive, pool already reused or terminated, job not in a state that has one).
NO_POOL_HINTS = ("warm pool", "warmpool", "keepalive", "status", "state")


class SageMakerJobService:
    """The job-service port on the SageMaker training jobs of one experiment: the jobs named
    `job_name(job_base, trial, run)`, never those of an experiment whose base starts the same."""

    def __init__(self, session: boto3.session.Session, job_base: str,
                 poll_seconds: float = 5.0, log_group: str = "/aws/sagemaker/TrainingJobs",
                 max_retries: int = 8, metrics_delay_seconds: float = LOG_PATIENCE_SECONDS,
                 metrics_margin_seconds: float = METRICS_MARGIN_SECONDS,
                 retries: RetryCounts | None = None):
        """`metrics_margin_seconds`: how far each metrics query reaches back before the
        previous one (CloudWatch's ingestion lag); tests shorten it to outrun a log delay.
        `retries.throttled_calls` counts every throttled answer (botocore retries them)."""
        self.metrics_delay_seconds = metrics_delay_seconds
        config = retrying(max_retries)
        self.sm = session.client("sagemaker", config=config)
        self.logs = session.client("logs", config=config)
        self.retries = retries or RetryCounts()
        for client in (self.sm, self.logs):
            client.meta.events.register("needs-retry", self._count_throttled)
        self.job_base = job_base
        self.log_group = log_group
        self.poll_seconds = poll_seconds
        self.metrics = LogMetricsReader(self.logs, log_group, job_base,
                                        margin_seconds=metrics_margin_seconds)
        self._jobs: dict[str, JobDescription] = {}
        self._described: dict[str, int] = {}  # DescribeTrainingJob calls since the job ended
        self._released: set[str] = set()
        self._settled: set[str] = set()  # ended, pool read after the end, no release sent
        self._list_since = time.time() - INITIAL_LOOKBACK_SECONDS
        self._status_due = 0.0  # time.monotonic() of the next allowed refresh
        self._metrics_due = 0.0

    # --- port ------------------------------------------------------------------------------

    def create_training_job(self, request: JobRequest) -> None:
        name = request["TrainingJobName"]
        try:
            response = self.sm.create_training_job(**request)
        except ClientError as err:
            raise_if_throttled(err, "CreateTrainingJob")
            if error_code(err) == "ResourceLimitExceeded":
                raise CapacityError(_capacity_message(request, error_message(err))) from None
            raise
        self._jobs[name] = {
            "TrainingJobName": name,
            "TrainingJobStatus": IN_PROGRESS,
            "CreationTime": server_time(response),  # its logs are read from then on
            "ResourceConfig": dict(request["ResourceConfig"]),
        }

    def describe_training_jobs(self, names: list[str]) -> dict[str, JobDescription]:
        if time.monotonic() >= self._status_due:
            self._refresh_status()
            for name in names:
                # Not created here (a resumed experiment): described once, then listed.
                if name not in self._jobs and is_trial_job(self.job_base, name):
                    self._describe(name)
            self._status_due = time.monotonic() + self.poll_seconds
        return {n: _copy(self._jobs[n]) for n in names if n in self._jobs}

    def stop_training_job(self, name: str) -> None:
        try:
            self.sm.stop_training_job(TrainingJobName=name)
        except ClientError as err:
            raise_if_throttled(err, "StopTrainingJob")
            # The job ended between our last poll and now: nothing left to stop.
            if error_code(err) == "ValidationException" and "status" in error_message(err).lower():
                return
            raise
        job = self._jobs.get(name)
        if job is not None and job["TrainingJobStatus"] == IN_PROGRESS:
            job["TrainingJobStatus"] = STOPPING  # what SageMaker reports right after the call

    def previous_jobs(self) -> dict[str, JobDescription]:
        """One paginated `ListTrainingJobs` over the experiment's trial-job prefix, and one
        `DescribeTrainingJob` per job: a running job's ResourceConfig decides a release, an
        ended job's BillableTimeInSeconds goes into its trial's rows (the first poll would
        describe each ended job once anyway)."""
        self._merge_listing()
        for name in list(self._jobs):
            self._describe(name)
        return {name: _copy(job) for name, job in self._jobs.items()}

    def release_warm_pool(self, name: str) -> None:
        """`UpdateTrainingJob` for a running job (its pool, if any, ends with it) or for an
        ended job whose pool is there now, described first, whatever an older listing said."""
        if name in self._released or not self._may_keep_pool(name):
            return
        # a job seen running is not described first: at the experiment's end every running
        # job is released before it is stopped, and one call each is what fits the stop grace
        running = self._jobs.get(name, {}).get("TrainingJobStatus") in (IN_PROGRESS, STOPPING)
        if not running:
            pool = self.warm_pool_status([name]).get(name) or {}
            running = self._jobs.get(name, {}).get("TrainingJobStatus") not in TERMINAL
        if not running and pool.get("Status") not in (WARM_AVAILABLE, WARM_IN_USE):
            self._settled.add(name)  # no pool (no quota), or it was reused or terminated
        else:
            try:
                self.sm.update_training_job(
                    TrainingJobName=name, ResourceConfig={"KeepAlivePeriodInSeconds": 0}
                )
            except ClientError as err:
                raise_if_throttled(err, "UpdateTrainingJob")
                message = error_message(err).lower()
                if error_code(err) != "ValidationException" or not any(
                    hint in message for hint in NO_POOL_HINTS
                ):
                    raise
                if running:  # refused while it runs: released again once it has ended
                    return
        self._released.add(name)  # released (or never there): a second release needs no call

    def warm_pool_status(self, names: list[str]) -> dict[str, dict[str, Any] | None]:
        """`DescribeTrainingJob` for each job whose pool may still change; a Reused or
        Terminated pool never changes again, and a job without keep-alive has none."""
        out: dict[str, dict[str, Any] | None] = {}
        for name in names:
            pool = self._jobs.get(name, {}).get("WarmPoolStatus")
            if self._may_keep_pool(name) and name not in self._settled and (
                    pool or {}).get("Status") not in FINAL_POOL_STATUSES:
                self._describe(name)
                pool = self._jobs.get(name, {}).get("WarmPoolStatus")
            out[name] = dict(pool) if pool else None
        return out

    def warm_pool_origins(self, names: list[str], since: float) -> dict[str, str]:
        """One paginated `ListTrainingJobs` of the account's reused pools (jobs created since
        `since`): the reusing job shows nothing of it, and the pool's job may be another
        experiment's, outside our prefix. Stops once every job asked about is found."""
        wanted, found = set(names), {}
        try:
            pages = self.sm.get_paginator("list_training_jobs").paginate(
                WarmPoolStatusEquals=WARM_REUSED, MaxResults=LIST_PAGE_SIZE,
                CreationTimeAfter=datetime.fromtimestamp(since, tz=UTC))
            for page in pages:
                for summary in page.get("TrainingJobSummaries", []):
                    reused_by = (summary.get("WarmPoolStatus") or {}).get("ReusedByJob")
                    if reused_by in wanted:
                        found[reused_by] = summary["TrainingJobName"]
                if len(found) == len(wanted):
                    break
        except ClientError as err:
            raise_if_throttled(err, "ListTrainingJobs")
            raise
        for name, origin in found.items():
            if name in self._jobs:
                self._jobs[name]["WarmPoolReusedFrom"] = origin
        return found

    def read_metrics(self, names: list[str]) -> dict[str, list[dict[str, Any]]]:
        if time.monotonic() >= self._metrics_due:
            self.metrics.poll(names, self._reach_back(names))
            self._metrics_due = time.monotonic() + self.poll_seconds
        return self.metrics.take(names)

    def metrics_complete(self, name: str) -> bool:
        return self.metrics.complete(name) or _never_trained(self._jobs.get(name, {}))

    def job_log(self, name: str) -> list[str]:
        """One paginated `FilterLogEvents` over the job's streams (none for a job that never
        reached its Training phase: it wrote no log)."""
        job = self._jobs.get(name, {})
        if _never_trained(job):
            return []
        return read_job_log(self.logs, self.log_group, name, job.get("CreationTime"))

    def wait_for_activity(self, timeout: float) -> None:
        """SageMaker pushes nothing to us: sleep until the next refresh is allowed."""
        due = max(self._status_due, self._metrics_due)  # a poll refreshes both
        time.sleep(max(0.0, min(timeout, due - time.monotonic())))

    def close(self) -> None:
        pass  # boto3 clients hold no resources worth closing; jobs are the backend's to stop

    def _count_throttled(self, response: Any = None, **_: Any) -> None:
        """botocore asks after every answer whether to retry it: count the throttled ones."""
        if response is not None and response[1].get("Error", {}).get("Code") in THROTTLING_CODES:
            self.retries.throttled_calls += 1

    # --- status ----------------------------------------------------------------------------

    def _refresh_status(self) -> None:
        """Jobs of this experiment modified since the last listing; describe the ones that ended.

        The watermark moves only after everything succeeded, so a throttled refresh is
        simply repeated at the next poll.
        """
        bounds = self._listing_bounds()
        now = None if bounds is None else self._merge_listing(
            LastModifiedTimeAfter=datetime.fromtimestamp(self._list_since, tz=UTC), **bounds)
        for name, job in self._jobs.items():
            described = self._described.get(name, 0)
            if job["TrainingJobStatus"] in TERMINAL and (described == 0 or (
                    "BillableTimeInSeconds" not in job and described < ENDED_DESCRIBES)):
                self._describe(name)
        self._list_since = max(self._list_since,
                               (now if now is not None else time.time()) - LIST_MARGIN_SECONDS)

    def _merge_listing(self, **filters: Any) -> float | None:
        """Every page of `ListTrainingJobs` over the trial-job prefix merged in; returns the
        server's time of the first page. SageMaker applies MaxResults before some filters: a
        page may be short or empty and still carry a NextToken, which the paginator follows."""
        now: float | None = None
        try:
            for page in self.sm.get_paginator("list_training_jobs").paginate(
                    NameContains=trial_job_prefix(self.job_base), MaxResults=LIST_PAGE_SIZE,
                    **filters):
                now = server_time(page) if now is None else now
                for summary in page.get("TrainingJobSummaries", []):
                    if is_trial_job(self.job_base, summary["TrainingJobName"]):
                        self._merge_summary(summary)
        except ClientError as err:
            raise_if_throttled(err, "ListTrainingJobs")
            raise
        return now

    def _listing_bounds(self) -> dict[str, Any] | None:
        """The listing is for jobs still running: none, no listing. Its pages may be cut
        before the name filter (as the endpoint does, and AWS documents for some filters),
        so the creation time of the oldest running job bounds it too, or each poll would
        page through every job of the account."""
        running = [job.get("CreationTime") for job in self._jobs.values()
                   if job.get("TrainingJobStatus") not in TERMINAL]
        if not running:
            return None
        if any(created is None for created in running):
            return {}
        oldest = min(float(created) for created in running) - LIST_MARGIN_SECONDS
        return {"CreationTimeAfter": datetime.fromtimestamp(oldest, tz=UTC)}

    def _merge_summary(self, summary: dict[str, Any]) -> None:
        name = summary["TrainingJobName"]
        fresh = _epochs({k: summary[k] for k in SUMMARY_FIELDS if k in summary})
        job = self._jobs.setdefault(name, {"TrainingJobName": name})
        known = job.get("LastModifiedTime")
        if known is not None and fresh.get("LastModifiedTime", 0.0) <= known:
            return  # a repeat within the margin, or an index older than our description
        if job.get("TrainingJobStatus") == STOPPING and fresh["TrainingJobStatus"] == IN_PROGRESS:
            fresh.pop("TrainingJobStatus")  # our stop is newer than this summary
        job.update(fresh)
        self._note_reuse(name, job)

    def _describe(self, name: str) -> None:
        """The fields only `DescribeTrainingJob` has, and the warm pool as it is now."""
        try:
            response = self.sm.describe_training_job(TrainingJobName=name)
        except ClientError as err:
            raise_if_throttled(err, "DescribeTrainingJob")
            if error_code(err) in ("ValidationException", "ResourceNotFound"):
                return  # no such job (yet): the backend keeps its own view
            raise
        job = self._jobs.setdefault(name, {})
        job.update(_epochs({k: response[k] for k in DESCRIBE_FIELDS if k in response}))
        if job.get("TrainingJobStatus") in TERMINAL:
            self._described[name] = self._described.get(name, 0) + 1
        self._note_reuse(name, job)

    def _may_keep_pool(self, name: str) -> bool:
        """False only for a job we know was created without a keep-alive period."""
        job = self._jobs.get(name)
        return job is None or bool(job.get("ResourceConfig", {}).get("KeepAlivePeriodInSeconds"))

    def _note_reuse(self, name: str, job: JobDescription) -> None:
        """SageMaker names the reusing job on the pool's job; record the reverse link too,
        as the local adapter does (`WarmPoolReusedFrom`). Pools belong to the account: a job
        of another experiment may reuse ours, and is then none of our business."""
        reused_by = (job.get("WarmPoolStatus") or {}).get("ReusedByJob")
        if reused_by and reused_by in self._jobs:
            self._jobs[reused_by]["WarmPoolReusedFrom"] = name

    def _reach_back(self, names: list[str]) -> float | None:
        """The creation time of the earliest of these jobs that ended with reports missing:
        CloudWatch may deliver a line later than any look-back, so such a job is read again
        from its start until its end line and every report it announced are in."""
        starts = [self._jobs[n]["CreationTime"] for n in names
                  if self._jobs.get(n, {}).get("TrainingJobStatus") in TERMINAL
                  and "CreationTime" in self._jobs[n] and not self.metrics.complete(n)]
        return min(starts) if starts else None


def _capacity_message(request: JobRequest, message: str) -> str:
    resource = request.get("ResourceConfig", {})
    instance = resource.get("InstanceType", "the instance type")
    kind = "warm pool" if "warm pool" in message.lower() else "job"
    quota = f"{instance} for training {kind} usage"
    return (f"ResourceLimitExceeded: the Service Quotas quota '{quota}' is used up "
            f"({message.strip() or 'no message'})")


def _epochs(value: Any) -> Any:
    """Datetimes as epoch floats, like the local adapter's descriptions."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, dict):
        return {k: _epochs(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_epochs(v) for v in value]
    return value


def _never_trained(job: JobDescription) -> bool:
    """A job that ended before its Training phase (no capacity, an image that could not be
    pulled) ran no container and writes no log: there are no reports to wait for."""
    transitions = job.get("SecondaryStatusTransitions")
    if job.get("TrainingJobStatus") not in TERMINAL or transitions is None:
        return False
    return not any(t.get("Status") == "Training" for t in transitions)


def _copy(job: JobDescription) -> JobDescription:
    return {k: dict(v) if isinstance(v, dict) else v for k, v in job.items()}
