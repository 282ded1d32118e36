"""`--jobs N`: a simulated study's experiments in N processes give the rows one process gives,
print one line per finished experiment, and stop on Ctrl-C so that --resume continues."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

from test_simulated_backend import rows, write_study

from stbench.model.spec import ExperimentSpec
from stbench.orchestration.store import METADATA, RESULTS
from stbench.orchestration.study_runner import plan_study, run_study

METHODS = ("ASHA", "BO")


def run_simulated(root: Path, tag: str, jobs: int, num_seeds: int = 2,
                  methods: tuple[str, ...] = METHODS, **fields: object) -> StringIO:
    spec = ExperimentSpec(method=methods, backend="simulated", from_study="rec",
                          experiment_tag=tag, results_root=str(root), random_seed=11,
                          num_seeds=num_seeds, jobs=jobs, **fields)  # type: ignore[arg-type]
    output = StringIO()
    outcomes = run_study(plan_study(spec), progress_stream=output)
    assert [o.status for o in outcomes] == ["completed"] * len(outcomes)
    return output


def without_times(folder: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "wallclock_time"} for row in rows(folder)]


def experiment_folders(root: Path, tag: str) -> list[Path]:
    return sorted(p.parent for p in (root / tag).glob("*/*/*/" + METADATA))


def test_two_processes_give_the_rows_of_one(tmp_path: Path) -> None:
    """Surrogate curves (a recorded study) and a GP method (BO): same seeds, same rows."""
    write_study(tmp_path, "rec")
    run_simulated(tmp_path, "serial", jobs=1)
    output = run_simulated(tmp_path, "parallel", jobs=2)
    serial = experiment_folders(tmp_path, "serial")
    parallel = experiment_folders(tmp_path, "parallel")
    assert [p.relative_to(tmp_path / "serial") for p in serial] == [
        p.relative_to(tmp_path / "parallel") for p in parallel]
    assert len(serial) == 4
    for one, two in zip(serial, parallel, strict=True):
        assert without_times(one) == without_times(two), one
        assert [r["wallclock_time"] for r in rows(one)] == [
            r["wallclock_time"] for r in rows(two)]
    lines = output.getvalue().splitlines()  # one line per experiment, counted, none mixed
    assert [line.split(") [")[0] for line in lines] == ["(1/4", "(2/4", "(3/4", "(4/4"]
    assert all(line.endswith("-> completed: time budget of 20 s used") for line in lines)


def test_resume_runs_only_what_is_missing(tmp_path: Path) -> None:
    write_study(tmp_path, "rec")
    methods = ("ASHA", "RS")
    run_simulated(tmp_path, "grow", jobs=2, num_seeds=1, methods=methods)
    first = {p: (p / RESULTS).stat().st_mtime_ns for p in experiment_folders(tmp_path, "grow")}
    output = run_simulated(tmp_path, "grow", jobs=2, num_seeds=2, methods=methods,
                           resume=True)
    assert {p: (p / RESULTS).stat().st_mtime_ns for p in first} == first  # left alone
    assert len(output.getvalue().splitlines()) == 2  # seed 1 of both methods
    run_simulated(tmp_path, "fresh", jobs=1, num_seeds=2, methods=methods)
    for method in methods:
        resumed = tmp_path / "grow" / "synthetic_curves" / method / "1"
        fresh = tmp_path / "fresh" / "synthetic_curves" / method / "1"
        assert without_times(resumed) == without_times(fresh)


def test_ctrl_c_stops_every_worker_and_resume_finishes_the_study(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group; the workers' experiments end as interrupted
    (not left 'running'), with one line and exit 130, and --resume completes them."""
    command = [sys.executable, "-m", "stbench.cli.main", "run", "--backend", "simulated",
               "--benchmark", "synthetic_curves", "--method", "ASHA", "--num_seeds", "2",
               # long enough (about 10 s of wall-clock each) that Ctrl-C lands mid-run
               "--max_wallclock_time", "1500", "--jobs", "2", "--random_seed", "3",
               "--experiment_tag", "stop", "--results_root", str(tmp_path)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    results = [tmp_path / "stop" / "synthetic_curves" / "ASHA" / seed / RESULTS
               for seed in ("0", "1")]
    while not all(p.is_file() and p.stat().st_size for p in results):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.splitlines()[-1] == (
        "stbench: interrupted; rerun the same command with --resume to continue")
    assert "Traceback" not in stderr
    statuses = [json.loads((p.parent / METADATA).read_text())["status"] for p in results]
    assert "interrupted" in statuses and set(statuses) <= {"interrupted", "completed"}
    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [json.loads((p.parent / METADATA).read_text())["status"] for p in results] == [
        "completed", "completed"]
