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

from kill_points import (
    assert_resumed_cleanly,
    local_trials_started,
    processes_in,
    rows,
    wait_for_unreported_trial,
)

from stbench.orchestration.store import METADATA, experiment_dir

STBENCH = Path(sys.executable).parent / "stbench"


def run_args(results: Path, *extra: str) -> list[str]:
    return [str(STBENCH), "run", "--benchmark", "synthetic_curves", "--method", "RS",
            "--experiment_tag", "k", "--results_root", str(results), "--random_seed", "5",
            "--n_workers", "2", "--max_wallclock_time", "6", "--epochs", "3",
            "--epoch_duration", "0.5", *extra]


def test_kill_9_leaves_no_trial_process_and_resume_continues(tmp_path: Path) -> None:
    results = tmp_path / "results"
    folder = experiment_dir(results, "k", "synthetic_curves", "RS", 0)
    first = subprocess.Popen(run_args(results), cwd=tmp_path, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    unreported = wait_for_unreported_trial(folder, local_trials_started)
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
    resumed = subprocess.run([*run_args(results), "--resume"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    meta = json.loads((folder / METADATA).read_text())
    assert meta["status"] == "completed" and meta["resumed"] is True
    assert_resumed_cleanly(before, rows(folder), spent, unreported)
    assert processes_in(tmp_path) == []
