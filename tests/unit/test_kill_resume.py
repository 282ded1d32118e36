"""kill -9 of `stbench run` (local processes), then `--resume` (issue 14 R2).

The orchestrator is SIGKILLed right after a trial started and before that trial reported: its
trial processes must end with it, the time it spent must count against the budget of the
resumed run, and the resumed run must finish without reusing the id (and the folder, with its
checkpoints) of the trial that had no results row yet.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from stbench.orchestration.store import METADATA, ResultStore, experiment_dir

STBENCH = Path(sys.executable).parent / "stbench"


def run_args(results: Path, *extra: str) -> list[str]:
    return [str(STBENCH), "run", "--benchmark", "synthetic_curves", "--method", "RS",
            "--experiment_tag", "k", "--results_root", str(results), "--random_seed", "5",
            "--n_workers", "2", "--max_wallclock_time", "6", "--epochs", "3",
            "--epoch_duration", "0.5", *extra]


def processes_in(folder: Path) -> list[psutil.Process]:
    """Processes working in `folder` (the orchestrator, its supervisor and trials run there):
    other sessions' stbench processes on this machine are not ours to count."""
    found = []
    for process in psutil.process_iter():
        try:
            if Path(process.cwd()).is_relative_to(folder) and process.status() != "zombie":
                found.append(process)
        except (psutil.Error, OSError):
            continue
    return found


def rows(folder: Path) -> list[dict]:
    """What a resume would read: every row with its trial's latest status."""
    return ResultStore.load_previous(folder).rows if ResultStore.exists(folder) else []


def wait_for_unreported_trial(folder: Path, timeout: float = 60) -> int:
    """The id of a trial that has a folder (it started) but no results row yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reported = {row["trial_id"] for row in rows(folder)}
        started = {int(p.name) for p in (folder / "trials").glob("*") if p.name.isdigit()}
        if reported and started - reported:
            return max(started - reported)
        time.sleep(0.02)
    raise AssertionError("no trial started without a report in time")


def test_kill_9_leaves_no_trial_process_and_resume_continues(tmp_path: Path) -> None:
    results = tmp_path / "results"
    folder = experiment_dir(results, "k", "synthetic_curves", "RS", 0)
    first = subprocess.Popen(run_args(results), cwd=tmp_path, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    unreported = wait_for_unreported_trial(folder)
    time.sleep(0.3)  # past the metadata's next write
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    deadline = time.monotonic() + 15  # the supervisor ends its trials when we are gone
    while processes_in(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_in(tmp_path) == []

    before = rows(folder)
    spent = json.loads((folder / METADATA).read_text()).get("elapsed_seconds", 0.0)
    assert spent >= 1.0  # kept current while running, not only written at the end
    completed_before = {r["trial_id"]: r for r in before if r["status"] == "Completed"}

    resumed = subprocess.run([*run_args(results), "--resume"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    meta = json.loads((folder / METADATA).read_text())
    assert meta["status"] == "completed" and meta["resumed"] is True
    after = rows(folder)
    new = after[len(before):]
    assert min(r["wallclock_time"] for r in new) >= spent  # the clock went on from there
    assert min(r["trial_id"] for r in new) > unreported  # its id and folder are not reused
    configs: dict[int, set[str]] = {}
    for row in after:
        configs.setdefault(row["trial_id"], set()).add(json.dumps(row["config"], sort_keys=True))
    assert all(len(c) == 1 for c in configs.values())
    for trial_id in completed_before:  # no completed trial lost
        assert [r for r in after if r["trial_id"] == trial_id][-1]["status"] == "Completed"
    assert processes_in(tmp_path) == []
