"""One SageMaker training job's whole CloudWatch log, read once when the job has ended.

The log group `/aws/sagemaker/TrainingJobs` holds one stream per host, `<job>/algo-<n>-<epoch>`,
with the container's stdout and stderr. One paginated `FilterLogEvents` over the stream
prefix `<job>/` (no job name is a prefix of another's) reads every host's lines, so a trial's
log costs the same few calls whatever its number of streams, and none while it runs.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from botocore.exceptions import ClientError

from stbench.backends.aws import error_code
from stbench.backends.jobs.sagemaker_metrics import raise_if_throttled

# The log agent stamps lines with the instance's clock: read from this long before creation.
START_MARGIN_SECONDS = 60.0
MAX_LINES = 100_000  # a chatty script's log keeps its end, where a failure shows


def read_job_log(logs_client: Any, log_group: str, job: str,
                 created: float | None = None) -> list[str]:
    """Every line of the job's streams in time order ([] when it logged nothing);
    `created`: the job's CreationTime (epoch seconds), to skip older events."""
    prefix = f"{job}/"
    query: dict[str, Any] = {"logGroupName": log_group, "logStreamNamePrefix": prefix}
    if created is not None:
        query["startTime"] = max(0, int((created - START_MARGIN_SECONDS) * 1000))
    events: dict[str, tuple[int, str]] = {}
    try:
        for page in logs_client.get_paginator("filter_log_events").paginate(**query):
            for event in page.get("events", []):
                if event.get("logStreamName", "").startswith(prefix):  # moto ignores the prefix
                    events[event["eventId"]] = (event["timestamp"], event.get("message", ""))
    except ClientError as err:
        raise_if_throttled(err, "FilterLogEvents")
        if error_code(err) == "ResourceNotFoundException":  # no job has logged yet
            return []
        raise
    ordered = sorted(events.values(), key=lambda item: item[0])  # stable: each stream's order
    return list(deque((message.rstrip("\n") for _, message in ordered), maxlen=MAX_LINES))
