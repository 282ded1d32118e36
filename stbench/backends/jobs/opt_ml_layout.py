"""The `/opt/ml` folder of a local instance: laid out as SageMaker does, read back after a job."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from stbench.backends.jobs.checkpoints import CheckpointStore
from stbench.model.container_contract import (
    FAILURE_REASON_CHARS,
    failure_path,
    hyperparameters_path,
)
from stbench.model.failures import killed_by


def prepare_instance_folder(folder: Path, request: dict[str, Any],
                            store: CheckpointStore) -> None:
    """Fresh input/output/model folders and the job's checkpoints restored, per job."""
    for sub in ("input", "output", "model", "checkpoints"):
        shutil.rmtree(folder / sub, ignore_errors=True)
    config = hyperparameters_path(folder).parent
    config.mkdir(parents=True)
    for sub in ("output", "model", "checkpoints"):
        (folder / sub).mkdir()
    hyperparameters_path(folder).write_text(json.dumps(request["HyperParameters"]))
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]})
    )
    store.restore(folder / "checkpoints")


def failure_reason(folder: Path, exit_code: int) -> str:
    """What SageMaker shows as FailureReason: `/opt/ml/output/failure`, else the exit code."""
    failure = failure_path(folder)
    if failure.is_file():
        text = failure.read_text(errors="replace").strip()
        if text:
            return text[:FAILURE_REASON_CHARS]
    if exit_code > 128:  # the shell's 128+N for a death by signal N
        return killed_by(exit_code - 128)
    return f"the trainer exited with code {exit_code}"


def tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def read_new_reports(path: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Complete JSON lines appended since `offset`; a half-written last line waits."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    reports = []
    for line in data[:end].splitlines():
        try:
            reports.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return reports, offset + end
