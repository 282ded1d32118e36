"""kill -9 of `stbench run --backend docker`, then `--resume` (issue 14 R2).

A killed orchestrator leaves its trainer containers running (their jobs belonged to it). The
resumed run removes them (they carry the experiment's label), never names a job or trial id
again, and finishes; afterwards no container or volume of the study is left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kill_points import assert_resumed_cleanly, job_trials_started, rows, wait_for_unreported_trial

from stbench.backends.jobs.docker_engine import STUDY_LABEL
from stbench.orchestration.store import METADATA, experiment_dir

pytestmark = pytest.mark.docker

STBENCH = Path(sys.executable).parent / "stbench"


def left_of(docker_client: Any, tag: str) -> list[Any]:
    label = {"label": f"{STUDY_LABEL}={tag}"}
    return [*docker_client.containers.list(all=True, filters=label),
            *docker_client.volumes.list(filters=label)]


def test_kill_9_of_a_docker_run_then_resume_leaves_nothing(
        docker_client: Any, images: dict, tmp_path: Path) -> None:
    tag = f"kill-{os.getpid()}"
    results = tmp_path / "results"
    args = [str(STBENCH), "run", "--backend", "docker", "--benchmark", "synthetic_curves",
            "--method", "RS", "--experiment_tag", tag, "--results_root", str(results),
            "--random_seed", "5", "--n_workers", "2", "--max_wallclock_time", "10",
            "--epochs", "3", "--epoch_duration", "0.5"]
    folder = experiment_dir(results, tag, "synthetic_curves", "RS", 0)
    first = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        unreported = wait_for_unreported_trial(folder, job_trials_started)
        time.sleep(0.3)  # past the metadata's next write
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    assert left_of(docker_client, tag)  # what the killed run could not remove

    before = rows(folder)
    spent = json.loads((folder / METADATA).read_text()).get("elapsed_seconds", 0.0)
    resumed = subprocess.run([*args, "--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((folder / METADATA).read_text())["status"] == "completed"
    assert_resumed_cleanly(before, rows(folder), spent, unreported)
    assert left_of(docker_client, tag) == []


def test_cleanup_docker_removes_what_a_killed_run_left_of_its_tag_only(
        docker_client: Any, images: dict) -> None:
    """Without a resume, `stbench cleanup --docker` removes the study's trainer containers and
    volumes (a killed run's are labelled with its tag), and nothing of another tag."""
    tag, other = f"gone-{os.getpid()}", f"gone-{os.getpid()}-2"
    made = []
    try:
        for label in (tag, other):
            labels = {STUDY_LABEL: label}
            made.append(docker_client.volumes.create(f"stbench-test-{label}", labels=labels))
            made.append(docker_client.containers.run(
                images["trainer"], entrypoint=["sleep", "infinity"], detach=True,
                network_mode="host", labels=labels))
        done = subprocess.run([str(STBENCH), "cleanup", "--experiment_tag", tag, "--docker",
                               "--yes"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "1 containers and 1 volumes" in done.stdout and "2 removed" in done.stdout
        assert left_of(docker_client, tag) == []
        assert len(left_of(docker_client, other)) == 2
    finally:
        for item in reversed(made):
            try:
                item.remove(force=True)
            except Exception:  # noqa: BLE001 - removed by the cleanup under test
                pass
