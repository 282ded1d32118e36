"""Trial turnaround (issue 14, P1): the trial supervisor is a fork of the orchestrator, which
has imported syne_tune, numpy and pandas already, so the first trial does not wait most of a
second for a new interpreter to import them again. Its trials still see what a supervisor
started as a new interpreter gave them: one BLAS thread each, and the trial's environment."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy  # noqa: F401 - the orchestrator has numpy's BLAS loaded, as stbench's does
import syne_tune  # noqa: F401
from syne_tune.backend.trial_status import Status

from stbench.backends.process.backend import LocalProcessBackend

SCRIPT = """
import os
from syne_tune import Reporter
from threadpoolctl import threadpool_info

blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
Reporter()(blas_threads=max(blas), trial_env=os.environ.get("ST_TRIAL_ID"))
"""


def test_the_supervisor_is_a_fork_and_trials_get_one_blas_thread(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    backend = LocalProcessBackend(script, tmp_path / "trials")
    try:
        backend.start_supervisor()
        supervisors = [pid for pid in os.listdir("/proc") if pid.isdigit()
                       and _parent(pid) == os.getpid() and _cmdline(pid) == _cmdline("self")]
        assert supervisors, "the supervisor runs this process's program: forked, not started"
        trial = backend.start_trial({})
        deadline = time.monotonic() + 30
        while backend.busy_trial_ids():
            assert time.monotonic() < deadline
            backend.wait_for_activity(0.5)
        statuses, results = backend.fetch_status_results([trial.trial_id])
        assert statuses[trial.trial_id][1] == Status.completed
        report = results[0][1]
        assert report["blas_threads"] == 1
        assert report["trial_env"] == str(trial.trial_id)
    finally:
        backend.close()


def _parent(pid: str) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return -1
    return int(next(line.split()[1] for line in status.splitlines()
                    if line.startswith("PPid:")))


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
