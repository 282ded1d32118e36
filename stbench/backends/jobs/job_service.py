"""The job-service port: what the job backend needs from SageMaker or its local stand-in.

Requests are exactly the dicts `CreateTrainingJob` takes; descriptions carry the fields of
`DescribeTrainingJob` the backend reads. Adapters only carry decisions out; every decision
(when to start, stop, count a failure, release a warm pool) lives in the job backend.
"""

from __future__ import annotations

from typing import Any, Protocol

IN_PROGRESS, COMPLETED, FAILED, STOPPING, STOPPED = (
    "InProgress", "Completed", "Failed", "Stopping", "Stopped",
)
TERMINAL = (COMPLETED, FAILED, STOPPED)
BUSY_JOB_STATUSES = (IN_PROGRESS, STOPPING)  # a stopping job still holds its instance
WARM_AVAILABLE, WARM_IN_USE, WARM_REUSED, WARM_TERMINATED = (
    "Available", "InUse", "Reused", "Terminated",
)

JobRequest = dict[str, Any]
JobDescription = dict[str, Any]


class CapacityError(Exception):
    """The service has no capacity now (SageMaker `ResourceLimitExceeded`): retry later."""


class Throttled(Exception):
    """The service asked us to slow down and its client's own retries ran out: back off."""


class JobService(Protocol):
    # How long after a job ends its last reports may still arrive (log delivery lag).
    metrics_delay_seconds: float

    def create_training_job(self, request: JobRequest) -> None: ...

    def describe_training_jobs(self, names: list[str]) -> dict[str, JobDescription]:
        """Descriptions of many jobs at once (one call, not one per job)."""
        ...

    def stop_training_job(self, name: str) -> None: ...

    def release_warm_pool(self, name: str) -> None:
        """`UpdateTrainingJob(ResourceConfig={"KeepAlivePeriodInSeconds": 0})`."""
        ...

    def read_metrics(self, names: list[str]) -> dict[str, list[dict[str, Any]]]:
        """New `[tune-metric]` reports of these jobs since the previous call."""
        ...

    def wait_for_activity(self, timeout: float) -> None:
        """Block until something may have changed (or timeout): no fixed polling sleep."""
        ...

    def close(self) -> None: ...
