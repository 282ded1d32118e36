"""The job-service port: what the job backend needs from SageMaker or its local stand-in.

Requests are exactly the dicts `CreateTrainingJob` takes; descriptions carry the fields of
`DescribeTrainingJob` the backend reads. Adapters only carry decisions out; every decision
(when to start, stop, count a failure, release a warm pool) lives in the job backend.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

JobRequest = dict[str, Any]
JobDescription = dict[str, Any]


class CapacityError(Exception):
    """The service has no capacity now (SageMaker `ResourceLimitExceeded`): retry later."""


class Throttled(Exception):
    """The service asked us to slow down and its client's own retries ran out: back off."""


@dataclass
class RetryCounts:
    """What an experiment rode out instead of failing a trial, for its metadata and summary:
    throttled answers its service clients retried (botocore, counted by the adapter), times
    the job back-end backed off after those retries ran out, and refused CreateTrainingJob
    calls (ResourceLimitExceeded) it waited out."""

    throttled_calls: int = 0
    backoffs: int = 0
    capacity_refusals: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class JobService(Protocol):
    # The longest a job's reports may trail its end (log delivery lag): after that the trial
    # keeps what was read. A job whose reports are all in (`metrics_complete`) is not waited for.
    metrics_delay_seconds: float

    def create_training_job(self, request: JobRequest) -> None: ...

    def describe_training_jobs(self, names: list[str]) -> dict[str, JobDescription]:
        """Descriptions of many jobs at once (one call, not one per job)."""
        ...

    def stop_training_job(self, name: str) -> None: ...

    def previous_jobs(self) -> dict[str, JobDescription]:
        """This experiment's trial jobs that earlier runs of it created (status and warm pool
        as the service sees them now), for a resumed experiment to take over."""
        ...

    def release_warm_pool(self, name: str) -> None:
        """`UpdateTrainingJob(ResourceConfig={"KeepAlivePeriodInSeconds": 0})`."""
        ...

    def warm_pool_status(self, names: list[str]) -> dict[str, dict[str, Any] | None]:
        """`WarmPoolStatus` of these jobs as the service reports it now (None: no pool)."""
        ...

    def warm_pool_origins(self, names: list[str], since: float) -> dict[str, str]:
        """For those of these jobs that started on a warm pool: the job whose pool it was, of
        whatever experiment (pools belong to the account, and only the pool's job names the
        job that took it). Jobs created before `since` (epoch seconds) are not looked at."""
        ...

    def read_metrics(self, names: list[str]) -> dict[str, list[dict[str, Any]]]:
        """New `[tune-metric]` reports of these jobs (those whose reports are still awaited)
        since the previous call."""
        ...

    def metrics_complete(self, name: str) -> bool:
        """Whether `read_metrics` handed out every report of this ended job."""
        ...

    def job_log(self, name: str) -> list[str]:
        """The ended job's whole log (its stdout and stderr lines), [] when it has none; read
        once per job, when its reports are in."""
        ...

    def wait_for_activity(self, timeout: float) -> None:
        """Block until something may have changed (or timeout): no fixed polling sleep."""
        ...

    def close(self) -> None: ...
