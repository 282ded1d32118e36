"""Metrics of SageMaker trials from CloudWatch Logs: one query per poll for all jobs at once.

SageMaker sends each container's stdout to the log group `/aws/sagemaker/TrainingJobs`, one
stream per host named `<job-name>/algo-<n>-<epoch>`; the trainer echoes the training
script's `[tune-metric]: {json}` lines there. One paginated `FilterLogEvents` per poll over
the experiment's stream prefix replaces the `DescribeLogStreams` + `GetLogEvents` per job
that Syne Tune 0.13 made, so the number of calls does not grow with the number of workers.
Also holds the boto3 helpers both SageMaker modules share (throttling, server clock).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from email.utils import parsedate_to_datetime
from typing import Any

from botocore.exceptions import ClientError

from stbench.backends.aws import THROTTLING_CODES, error_code, error_message
from stbench.backends.jobs.job_service import Throttled
from stbench.model.container_contract import TRAINER_TIMESTAMP, find_report

log = logging.getLogger(__name__)

FILTER_PATTERN = '"[tune-metric]"'
# Log events become searchable a few seconds after their timestamp (agent buffering and
# ingestion), so each query reaches back this far before the previous one; eventIds dedupe.
METRICS_MARGIN_SECONDS = 30.0
# The first query of a new service reaches back this far: covers clock skew between this
# machine and AWS before the first response tells us the server's time.
INITIAL_LOOKBACK_SECONDS = 300.0


def raise_if_throttled(err: ClientError, operation: str) -> None:
    """botocore's adaptive retries already backed off; what still fails is the caller's to pace."""
    if error_code(err) in THROTTLING_CODES:
        raise Throttled(f"{operation}: {error_code(err)}: {error_message(err)}") from None


def server_time(response: dict[str, Any]) -> float:
    """The service's clock (HTTP `Date`, 1 s resolution), so our watermarks ignore local skew."""
    date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if date:
        try:
            return parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            pass
    return time.time()


def parse_report(message: str, timestamp_ms: int) -> dict[str, Any] | None:
    """A `[tune-metric]` line as Syne Tune's Reporter prints it, or None if malformed."""
    try:
        report = find_report(message)
    except ValueError as err:
        log.warning("ignoring %s", err)
        return None
    if report is None:
        return None
    report.setdefault(TRAINER_TIMESTAMP, timestamp_ms / 1000.0)
    return report


class LogMetricsReader:
    """New `[tune-metric]` reports of every job whose name starts with `job_prefix`."""

    def __init__(self, logs_client: Any, log_group: str, job_prefix: str,
                 margin_seconds: float = METRICS_MARGIN_SECONDS):
        self.logs = logs_client
        self.log_group = log_group
        self.job_prefix = job_prefix
        self.margin_ms = int(margin_seconds * 1000)
        self._since_ms = int((time.time() - INITIAL_LOOKBACK_SECONDS) * 1000)
        self._seen: dict[str, int] = {}  # eventId -> timestamp, pruned below the watermark
        self._pending: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def poll(self) -> None:
        """One paginated `FilterLogEvents` for all jobs; new reports wait in per-job buffers."""
        new: list[tuple[int, str, dict[str, Any]]] = []
        seen_now: dict[str, int] = {}
        now_ms: int | None = None
        try:
            paginator = self.logs.get_paginator("filter_log_events")
            for page in paginator.paginate(
                logGroupName=self.log_group, logStreamNamePrefix=self.job_prefix,
                startTime=self._since_ms, filterPattern=FILTER_PATTERN,
            ):
                if now_ms is None:
                    now_ms = int(server_time(page) * 1000)
                for event in page.get("events", []):
                    event_id = event["eventId"]
                    if event_id in self._seen or event_id in seen_now:
                        continue
                    seen_now[event_id] = event["timestamp"]
                    # moto 5.2 ignores logStreamNamePrefix (returns every stream of the
                    # group), so the prefix is checked here too; on AWS this is a no-op.
                    job, _, _ = event.get("logStreamName", "").partition("/")
                    if not job.startswith(self.job_prefix):
                        continue
                    report = parse_report(event.get("message", ""), event["timestamp"])
                    if report is not None:
                        new.append((event["timestamp"], job, report))
        except ClientError as err:
            raise_if_throttled(err, "FilterLogEvents")
            if error_code(err) != "ResourceNotFoundException":  # no job has logged yet
                raise
        # Only a complete query moves the watermark; a failed one is repeated next poll.
        self._seen.update(seen_now)
        for _, job, report in sorted(new, key=lambda item: item[0]):
            self._pending[job].append(report)
        now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        self._since_ms = max(self._since_ms, now_ms - self.margin_ms)
        self._seen = {e: t for e, t in self._seen.items() if t >= self._since_ms}

    def take(self, names: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Buffered reports of these jobs, each handed out once; other jobs' reports wait."""
        out = {}
        for name in names:
            reports = self._pending.pop(name, None)
            if reports:
                out[name] = reports
        return out
