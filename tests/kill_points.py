"""Helpers of the kill -9 and stop-signal tests (issue 14 R2, R4): where to kill, what is left."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from stbench.orchestration.store import ResultStore


def rows(folder: Path) -> list[dict]:
    """What a resume would read: every row with its trial's latest status."""
    return ResultStore.load_previous(folder).rows if ResultStore.exists(folder) else []


def local_trials_started(folder: Path) -> set[int]:
    """Trial ids of the local back-end that started: each has a folder."""
    return {int(p.name) for p in (folder / "trials").glob("*") if p.name.isdigit()}


def job_trials_started(folder: Path) -> set[int]:
    """Trial ids of the docker back-end whose job started: each has a log file."""
    return {int(m[1]) for p in (folder / "jobs").glob("*/logs/*.log")
            if (m := re.search(r"-t(\d{6})-r\d{2}$", p.stem))}


def wait_for_unreported_trial(folder: Path, started: Callable[[Path], set[int]],
                              timeout: float = 120) -> int:
    """The id of a trial that started but has no results row yet: the moment a kill -9
    leaves a trial the results do not know."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reported = {row["trial_id"] for row in rows(folder)}
        if reported and started(folder) - reported:
            return max(started(folder) - reported)
        time.sleep(0.02)
    raise AssertionError("no trial started without a report in time")


def processes_in(folder: Path) -> list[psutil.Process]:
    """Live processes working in `folder` (an orchestrator started there, its supervisor and
    trials): other sessions' stbench processes on this machine are not ours to count."""
    found = []
    for process in psutil.process_iter():
        try:
            if Path(process.cwd()).is_relative_to(folder) and process.status() != "zombie":
                found.append(process)
        except (psutil.Error, OSError):
            continue
    return found


def assert_resumed_cleanly(before: list[dict], after: list[dict], spent: float,
                           unreported: int) -> None:
    """No completed trial lost, no trial id for two configs, new ids past the trial that had
    no row, and the resumed run's clock continuing from the time spent before the kill."""
    new = after[len(before):]
    assert new, "the resumed run started no trial"
    assert min(r["wallclock_time"] for r in new) >= spent
    assert min(r["trial_id"] for r in new) > unreported
    configs: dict[int, set[str]] = {}
    for row in after:
        configs.setdefault(row["trial_id"], set()).add(json.dumps(row["config"], sort_keys=True))
    assert all(len(c) == 1 for c in configs.values()), configs
    final = {r["trial_id"]: r["status"] for r in after}
    assert all(final[r["trial_id"]] == "Completed" for r in before if r["status"] == "Completed")
