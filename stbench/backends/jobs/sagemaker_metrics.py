"""Metrics of SageMaker trials from CloudWatch Logs: one query per poll for all jobs at once.

SageMaker sends each container's stdout to the log group `/aws/sagemaker/TrainingJobs`, one
stream per host named `<job-name>/algo-<n>-<epoch>`; the trainer echoes the training
script's `[tune-metric]: {json}` lines there, then its own end line with their number.
One paginated `FilterLogEvents` per poll over the experiment's stream prefix replaces the
`DescribeLogStreams` + `GetLogEvents` per job that Syne Tune 0.13 made, so the number of
calls does not grow with the number of workers.
CloudWatch may deliver a line later than any look-back: a job that ended with reports
missing is read again from its start until they are all in, so no report is lost.
Also holds the boto3 helpers both SageMaker modules share (throttling, server clock).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

from botocore.exceptions import ClientError

from stbench.backends.aws import THROTTLING_CODES, error_code, error_message
from stbench.backends.jobs.job_service import Throttled
from stbench.model.container_contract import TRAINER_TIMESTAMP, find_end, find_report
from stbench.model.naming import is_trial_job, trial_job_prefix

log = logging.getLogger(__name__)

# Report lines, or the trainer's end line that says how many reports there were.
FILTER_PATTERN = '?"[tune-metric]" ?"[stbench-trainer] end"'
# Log events become searchable a few seconds after their timestamp (agent buffering and
# ingestion), so each query reaches back this far before the previous one; eventIds dedupe.
METRICS_MARGIN_SECONDS = 30.0
# The first query of a new service reaches back this far: covers clock skew between this
# machine and AWS before the first response tells us the server's time.
INITIAL_LOOKBACK_SECONDS = 300.0
# A job read again from its start: how far before its CreationTime (the log agent's clock).
REACH_BACK_MARGIN_SECONDS = 60.0


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


@dataclass
class JobLog:
    """What was read of one job's log lines."""

    seen: set[str] = field(default_factory=set)  # eventIds
    pending: list[dict[str, Any]] = field(default_factory=list)  # reports not handed out yet
    reports: int = 0  # reports read
    announced: int | None = None  # how many the trainer's end line says it printed


class LogMetricsReader:
    """`[tune-metric]` reports of one experiment's trial jobs, each handed out once, and
    whether a job's reports are all in: its end line arrived and as many reports as it
    announced. Lines may arrive late and out of order."""

    def __init__(self, logs_client: Any, log_group: str, job_base: str,
                 margin_seconds: float = METRICS_MARGIN_SECONDS):
        self.logs = logs_client
        self.log_group = log_group
        self.job_base = job_base
        self.margin_ms = int(margin_seconds * 1000)
        self._since_ms = int((time.time() - INITIAL_LOOKBACK_SECONDS) * 1000)
        self._jobs: dict[str, JobLog] = {}

    def poll(self, names: Collection[str], reach_back: float | None = None) -> None:
        """One paginated `FilterLogEvents` for the lines of these jobs (those still awaited),
        since the moving watermark or, when a job ended with reports missing, since
        `reach_back` (epoch seconds, that job's creation). Other jobs are forgotten."""
        awaited = set(names)
        start_ms = self._since_ms
        if reach_back is not None:
            start_ms = max(0, min(start_ms, int((reach_back - REACH_BACK_MARGIN_SECONDS) * 1000)))
        lines: list[tuple[int, str, str, str]] = []  # timestamp, job, eventId, message
        now_ms: int | None = None
        try:
            paginator = self.logs.get_paginator("filter_log_events")
            # A page may be empty and still carry a nextToken: the paginator follows it.
            for page in paginator.paginate(
                logGroupName=self.log_group, logStreamNamePrefix=trial_job_prefix(self.job_base),
                startTime=start_ms, filterPattern=FILTER_PATTERN,
            ):
                if now_ms is None:
                    now_ms = int(server_time(page) * 1000)
                for event in page.get("events", []):
                    # A stream is `<job>/algo-1-<epoch>`. The prefix also matches other
                    # experiments (seed 10 for seed 1), and moto ignores it: compare names.
                    job = event.get("logStreamName", "").partition("/")[0]
                    if job in awaited and is_trial_job(self.job_base, job):
                        lines.append((event["timestamp"], job, event["eventId"],
                                      event.get("message", "")))
        except ClientError as err:
            raise_if_throttled(err, "FilterLogEvents")
            if error_code(err) != "ResourceNotFoundException":  # no job has logged yet
                raise
        # Only a complete query changes anything; a failed one is repeated next poll.
        self._jobs = {job: state for job, state in self._jobs.items() if job in awaited}
        for timestamp, job, event_id, message in sorted(lines):
            state = self._jobs.setdefault(job, JobLog())
            if event_id in state.seen:
                continue
            state.seen.add(event_id)
            announced = find_end(message)
            if announced is not None:
                state.announced = announced
            elif (report := parse_report(message, timestamp)) is not None:
                state.pending.append(report)
                state.reports += 1
        now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        self._since_ms = max(self._since_ms, now_ms - self.margin_ms)

    def take(self, names: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Buffered reports of these jobs, each handed out once; other jobs' reports wait."""
        out = {}
        for name in names:
            state = self._jobs.get(name)
            if state is not None and state.pending:
                out[name], state.pending = state.pending, []
        return out

    def complete(self, name: str) -> bool:
        """Every report of this job was handed out, as its end line says."""
        state = self._jobs.get(name)
        return (state is not None and state.announced is not None and not state.pending
                and state.reports >= state.announced)
