"""SageMaker adapter of the job-service port: boto3 only, a flat number of calls per poll.

Syne Tune 0.13 asked SageMaker `Search` for every 20 jobs and read each job's log streams,
so a poll cost about 3 calls per worker and hit API throttling at scale. Here a poll is one
paginated `ListTrainingJobs` over the experiment's name prefix, restricted to jobs modified
since the previous poll (the summaries carry status and warm-pool status), plus one
`DescribeTrainingJob` per job when it ends (failure reason, billable time, warm pool), plus
one `FilterLogEvents` for the metrics of all jobs (see `sagemaker_metrics`). Answers come
from a cache refreshed at most once per `poll_seconds`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError

from stbench.backends.aws import error_code, error_message, retrying
from stbench.backends.jobs.job_service import (
    IN_PROGRESS,
    STOPPING,
    TERMINAL,
    WARM_REUSED,
    WARM_TERMINATED,
    CapacityError,
    JobDescription,
    JobRequest,
)
from stbench.backends.jobs.sagemaker_metrics import (
    LogMetricsReader,
    raise_if_throttled,
    server_time,
)

LIST_PAGE_SIZE = 100  # the API's maximum
# The list index lags job updates by a few seconds: each listing reaches back this far before
# the previous one (on the server's clock). Repeats are cheap: unchanged summaries are no-ops.
LIST_MARGIN_SECONDS = 30.0
INITIAL_LOOKBACK_SECONDS = 300.0  # first listing: tolerate this much local clock skew
SUMMARY_FIELDS = ("TrainingJobStatus", "SecondaryStatus", "WarmPoolStatus", "CreationTime",
                  "TrainingEndTime", "LastModifiedTime")
DESCRIBE_FIELDS = ("TrainingJobName", "TrainingJobStatus", "SecondaryStatus", "FailureReason",
                   "CreationTime", "TrainingStartTime", "TrainingEndTime", "LastModifiedTime",
                   "BillableTimeInSeconds", "ResourceConfig", "WarmPoolStatus")
# Words of the ValidationExceptions UpdateTrainingJob answers when there is no pool to end
# (no keep-alive, pool already reused or terminated, job not in a state that has one).
NO_POOL_HINTS = ("warm pool", "warmpool", "keepalive", "status", "state")


class SageMakerJobService:
    """The job-service port on SageMaker training jobs of one experiment (one name prefix)."""

    def __init__(self, session: boto3.session.Session, job_prefix: str,
                 poll_seconds: float = 5.0, log_group: str = "/aws/sagemaker/TrainingJobs",
                 max_retries: int = 8, metrics_delay_seconds: float = 15.0):
        # CloudWatch may deliver a job's last log lines after DescribeTrainingJob says it ended.
        self.metrics_delay_seconds = metrics_delay_seconds
        config = retrying(max_retries)
        self.sm = session.client("sagemaker", config=config)
        self.logs = session.client("logs", config=config)
        self.job_prefix = job_prefix
        self.poll_seconds = poll_seconds
        self.metrics = LogMetricsReader(self.logs, log_group, job_prefix)
        self._jobs: dict[str, JobDescription] = {}
        self._described: set[str] = set()  # jobs described since they reached a terminal status
        self._list_since = time.time() - INITIAL_LOOKBACK_SECONDS
        self._status_due = 0.0  # time.monotonic() of the next allowed refresh
        self._metrics_due = 0.0

    # --- port ------------------------------------------------------------------------------

    def create_training_job(self, request: JobRequest) -> None:
        name = request["TrainingJobName"]
        try:
            self.sm.create_training_job(**request)
        except ClientError as err:
            raise_if_throttled(err, "CreateTrainingJob")
            if error_code(err) == "ResourceLimitExceeded":
                raise CapacityError(_capacity_message(request, error_message(err))) from None
            raise
        self._jobs[name] = {
            "TrainingJobName": name,
            "TrainingJobStatus": IN_PROGRESS,
            "CreationTime": time.time(),
            "ResourceConfig": dict(request["ResourceConfig"]),
        }

    def describe_training_jobs(self, names: list[str]) -> dict[str, JobDescription]:
        if time.monotonic() >= self._status_due:
            self._refresh_status()
            for name in names:
                # Not created here (a resumed experiment): described once, then listed.
                if name not in self._jobs and name.startswith(self.job_prefix):
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

    def release_warm_pool(self, name: str) -> None:
        job = self._jobs.get(name)
        if job is not None:  # skip calls that cannot matter: no keep-alive, pool already gone
            keep_alive = job.get("ResourceConfig", {}).get("KeepAlivePeriodInSeconds", 0)
            pool = (job.get("WarmPoolStatus") or {}).get("Status")
            if not keep_alive or pool in (WARM_REUSED, WARM_TERMINATED):
                return
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
        if job is not None:  # released (or never there): a second release needs no call
            job.setdefault("ResourceConfig", {})["KeepAlivePeriodInSeconds"] = 0

    def read_metrics(self, names: list[str]) -> dict[str, list[dict[str, Any]]]:
        if time.monotonic() >= self._metrics_due:
            self.metrics.poll()
            self._metrics_due = time.monotonic() + self.poll_seconds
        return self.metrics.take(names)

    def wait_for_activity(self, timeout: float) -> None:
        """SageMaker pushes nothing to us: sleep until the next refresh is allowed."""
        due = max(self._status_due, self._metrics_due)  # a poll refreshes both
        time.sleep(max(0.0, min(timeout, due - time.monotonic())))

    def close(self) -> None:
        pass  # boto3 clients hold no resources worth closing; jobs are the backend's to stop

    # --- status ----------------------------------------------------------------------------

    def _refresh_status(self) -> None:
        """Jobs of this experiment modified since the last listing; describe the ones that ended.

        The watermark moves only after everything succeeded, so a throttled refresh is
        simply repeated at the next poll.
        """
        now: float | None = None
        paginator = self.sm.get_paginator("list_training_jobs")
        try:
            # moto 5.2 applies MaxResults before NameContains/LastModifiedTimeAfter, so its
            # pages can be short or empty while a NextToken remains; following NextToken to
            # the end is right on both, but under moto the page count grows with all jobs.
            for page in paginator.paginate(
                NameContains=self.job_prefix, MaxResults=LIST_PAGE_SIZE,
                LastModifiedTimeAfter=datetime.fromtimestamp(self._list_since, tz=UTC),
            ):
                if now is None:
                    now = server_time(page)
                for summary in page.get("TrainingJobSummaries", []):
                    if summary["TrainingJobName"].startswith(self.job_prefix):  # NameContains
                        self._merge_summary(summary)
        except ClientError as err:
            raise_if_throttled(err, "ListTrainingJobs")
            raise
        for name, job in self._jobs.items():
            if job["TrainingJobStatus"] in TERMINAL and name not in self._described:
                self._describe(name)
        self._list_since = max(self._list_since,
                               (now if now is not None else time.time()) - LIST_MARGIN_SECONDS)

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
        """Once per job at its end: the fields only `DescribeTrainingJob` has."""
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
            self._described.add(name)
        self._note_reuse(name, job)

    def _note_reuse(self, name: str, job: JobDescription) -> None:
        """SageMaker names the reusing job on the pool's job; record the reverse link too,
        as the local adapter does (`WarmPoolReusedFrom`)."""
        reused_by = (job.get("WarmPoolStatus") or {}).get("ReusedByJob")
        if reused_by and reused_by in self._jobs:
            self._jobs[reused_by]["WarmPoolReusedFrom"] = name


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


def _copy(job: JobDescription) -> JobDescription:
    return {k: dict(v) if isinstance(v, dict) else v for k, v in job.items()}
