"""Container output into CloudWatch Logs, late, as CloudWatch delivers it.

Each line keeps the time it was written as its event timestamp but becomes visible (is put
into moto's Logs backend, which serves FilterLogEvents and GetLogEvents) only
`log_delay_seconds` later. A client that reads with a look-back shorter than the delay, by
event time, misses lines here as it would on AWS under ingestion lag. The endpoint is the
fake, so it writes into moto's backend directly: its own deliveries must never be throttled.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass

from stbench.emulator.job_records import ACCOUNT_ID

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
MAX_MESSAGE_BYTES = 256 * 1024 - 26  # CloudWatch's event size limit less its overhead
MAX_BATCH = 10_000  # events per PutLogEvents


@dataclass(frozen=True)
class Line:
    visible_at: float
    timestamp_ms: int
    message: str


class LogDelivery:
    """Lines waiting for their delivery time, per (region, stream)."""

    def __init__(self, delay_seconds: float):
        self.delay = delay_seconds
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], list[Line]] = defaultdict(list)

    def add(self, region: str, stream: str, timestamp_ms: int, message: str) -> None:
        line = Line(timestamp_ms / 1000.0 + self.delay, timestamp_ms,
                    message[:MAX_MESSAGE_BYTES] or " ")
        with self._lock:
            self._pending[(region, stream)].append(line)

    def deliver_due(self, now: float | None = None) -> None:
        """Put every line whose delivery time has come (all of them with now=inf)."""
        now = time.time() if now is None else now
        due: dict[tuple[str, str], list[Line]] = {}
        with self._lock:
            for key, lines in list(self._pending.items()):
                ready = [line for line in lines if line.visible_at <= now]
                if ready:
                    due[key] = ready
                    rest = [line for line in lines if line.visible_at > now]
                    if rest:
                        self._pending[key] = rest
                    else:
                        del self._pending[key]
        for (region, stream), lines in due.items():
            self._put(region, stream, sorted(lines, key=lambda line: line.timestamp_ms))

    def _put(self, region: str, stream: str, lines: list[Line]) -> None:
        from moto.logs.models import logs_backends

        backend = logs_backends[ACCOUNT_ID][region]
        if LOG_GROUP not in backend.groups:
            backend.create_log_group(LOG_GROUP, tags={})
        backend.ensure_log_stream(LOG_GROUP, stream)
        for start in range(0, len(lines), MAX_BATCH):
            batch = lines[start:start + MAX_BATCH]
            backend.put_log_events(LOG_GROUP, stream, [
                {"timestamp": line.timestamp_ms, "message": line.message} for line in batch])
