"""The training-container contract, written down once for every side that honours it.

SageMaker's part: a job's files live under `/opt/ml` (hyperparameters in, checkpoints, the
failure file whose first 1024 characters become FailureReason). stbench's part: the
hyperparameter naming the benchmark, and Syne Tune's `[tune-metric]: {json}` report lines.
The trainer and the orchestrator's remote mode write it; the local adapter, the local trial
supervisor and the CloudWatch metrics reader read it. Pure: no AWS or Docker imports.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

BENCHMARK_KEY = "stbench_benchmark"  # the hyperparameter that names a trial's benchmark
MAX_HYPERPARAMETERS = 100  # SageMaker's limit; the local adapter must not allow more
DEFAULT_OPT_ML = "/opt/ml"
FAILURE_REASON_CHARS = 1024  # what SageMaker keeps of the failure file
METRIC_TAG = "[tune-metric]: "
# Syne Tune's own pattern (syne_tune.report.retrieve): a report may follow other text on a line
METRIC_PATTERN = re.compile(re.escape(METRIC_TAG) + r"(\{.*\})")
TRAINER_TIMESTAMP = "st_trainer_timestamp"  # when the trainer saw a report (epoch seconds)
# SageMaker's warm-pool cache: a folder that outlives the job on a kept instance, and its variable
WARMPOOL_CACHE_DIR = "/opt/ml/sagemaker/warmpoolcache"
WARMPOOL_CACHE_ENV = "SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY"


def opt_ml_root() -> Path:
    """`/opt/ml`, or `$STBENCH_OPT_ML` when a test or a process trial runs the contract."""
    return Path(os.environ.get("STBENCH_OPT_ML") or DEFAULT_OPT_ML)


def hyperparameters_path(root: Path) -> Path:
    return root / "input" / "config" / "hyperparameters.json"


def failure_path(root: Path) -> Path:
    return root / "output" / "failure"


def write_failure(root: Path, reason: str) -> None:
    """Explain a failed job where SageMaker (and the local adapter) read it; raises OSError."""
    path = failure_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(reason + "\n", encoding="utf-8")


# A value in a report as Syne Tune's Reporter writes it (json.dumps): a JSON number.
_REPORTED_NUMBER = r"(-?[0-9]+[.]?[0-9]*([eE][-+]?[0-9]+)?)"
_REGEX_SPECIALS = set("\\^$.|?*+()[]{}")


def metric_regex(metric: str) -> str:
    """A regular expression whose first group is `metric`'s value on a `[tune-metric]` line:
    SageMaker's MetricDefinitions, so the console plots each job's curve. Plain constructs
    only (escapes, `.*`, groups, classes, `?`), which every regex flavour reads alike; the
    key is matched with its quotes, so `loss` never matches `val_loss`."""
    key = json.dumps(metric)  # as the report spells it, escapes included
    escaped = "".join("\\" + c if c in _REGEX_SPECIALS else c for c in key)
    return r"\[tune-metric\]: \{.*" + escaped + r": ?" + _REPORTED_NUMBER


def find_report(line: str) -> dict[str, Any] | None:
    """The report a `[tune-metric]` line carries, None for any other line; a malformed
    report raises ValueError saying what is wrong with it."""
    match = METRIC_PATTERN.search(line)
    if match is None:
        return None
    try:
        report = json.loads(match.group(1))
    except json.JSONDecodeError:
        raise ValueError(f"a [tune-metric] line that is not JSON: {match.group(1)[:200]}"
                         ) from None
    if not isinstance(report, dict):
        raise ValueError("a [tune-metric] report that is not a JSON object")
    return report


# The trainer's last stdout line: how many reports the job printed, so that a reader whose
# lines may arrive late and out of order (CloudWatch Logs) knows when it has read them all.
END_TAG = "[stbench-trainer] end reports="
END_PATTERN = re.compile(re.escape(END_TAG) + r"(\d+)")


def end_line(reports: int) -> str:
    return f"{END_TAG}{reports}"


def find_end(line: str) -> int | None:
    """The report count an end line announces, None for any other line."""
    match = END_PATTERN.search(line)
    return int(match.group(1)) if match else None
