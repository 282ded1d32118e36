"""What an experiment with failing trials left behind, counted the way a user would check it.

Reports emitted are the `[tune-metric]` lines of each trial's `trials/<id>/std.out` (the local
back-end writes the trial's stdout there; the job back-ends keep each job's log there, read
from the container or from CloudWatch); reports stored are the rows of results.jsonl with
metrics. Shared by the R1/R3 tests and bench/reliability_faults.py, as `bad_inputs.py` is.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stbench.emulator.config import EmulatorConfig
from stbench.model.container_contract import METRIC_TAG
from stbench.orchestration.store import METADATA, RESULTS

SIGKILL_REASON = "killed by signal SIGKILL (out of memory?)"
FAULT_ARGS = ["--failure_probability", "0.3", "--kill_probability", "0.3"]
INSTANCE = "ml.c5.xlarge"
NO_QUOTA_INSTANCE = "ml.m5.xlarge"  # its training-job quota is 0: no job can ever start


def faulty_endpoint(**timings: float) -> EmulatorConfig:
    """The local SageMaker endpoint of issue 14 R3: 30 % of SageMaker and CloudWatch Logs
    calls throttled, 30 % of CreateTrainingJob calls refused with ResourceLimitExceeded;
    room for 100 jobs of INSTANCE and none of NO_QUOTA_INSTANCE."""
    return EmulatorConfig(throttle_fraction=0.3, capacity_refusal_fraction=0.3, seed=14,
                          quotas={f"{INSTANCE} for training job usage": 100.0,
                                  f"{NO_QUOTA_INSTANCE} for training job usage": 0.0},
                          **timings)  # type: ignore[arg-type]


@dataclass
class FaultAudit:
    """One experiment's trials, failures and reports; `lost` must be 0."""

    status: str
    reason: str
    failures: int  # metadata's count
    statuses: dict[int, str]
    reasons: dict[int, str]  # failed trial -> its failure reason ('' if none recorded)
    emitted: Counter[int]
    stored: Counter[int]
    retries: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> list[int]:
        return sorted(t for t, status in self.statuses.items() if status == "Failed")

    @property
    def lost(self) -> int:
        """Reports that completed or failed trials printed and results.jsonl lacks (or has
        twice); a stopped trial may have printed more after stbench stopped it."""
        return sum(abs(self.emitted[t] - self.stored[t]) if status != "Stopped"
                   else max(0, self.stored[t] - self.emitted[t])
                   for t, status in self.statuses.items())

    @property
    def after_stop(self) -> int:
        """Reports stopped trials printed after stbench stopped them (not results)."""
        return sum(max(0, self.emitted[t] - self.stored[t])
                   for t, status in self.statuses.items() if status == "Stopped")

    @property
    def sigkilled(self) -> int:
        return sum(SIGKILL_REASON in reason for reason in self.reasons.values())


def read_rows(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / RESULTS).read_text().splitlines() if line]


def emitted_reports(folder: Path) -> Counter[int]:
    return Counter({int(log.parent.name): sum(line.startswith(METRIC_TAG) for line in
                                              log.read_text(errors="replace").splitlines())
                    for log in (folder / "trials").glob("*/std.out")})


def audit(folder: Path) -> FaultAudit:
    rows = read_rows(folder)
    metadata = json.loads((folder / METADATA).read_text())
    statuses = {row["trial_id"]: row["status"] for row in rows}
    reasons = {row["trial_id"]: row.get("failure_reason") or "" for row in rows
               if row["status"] == "Failed"}
    stored = Counter(row["trial_id"] for row in rows if row["metrics"])
    return FaultAudit(metadata["status"], metadata.get("reason", ""), metadata["failures"],
                      statuses, reasons, emitted_reports(folder), stored,
                      metadata.get("retries", {}))


def epochs_in_order(folder: Path) -> bool:
    """Each trial's stored reports are epochs 1, 2, …: none skipped, none repeated."""
    seen: dict[int, list[int]] = {}
    for row in read_rows(folder):
        if row["metrics"]:
            seen.setdefault(row["trial_id"], []).append(row["metrics"]["epoch"])
    return all(epochs == list(range(1, len(epochs) + 1)) for epochs in seen.values())
