"""`stbench launch --local` end to end: the remote mode rehearsed offline.

moto's S3 server on a free 127.0.0.1 port stands in for S3; the orchestrator jobs are real
orchestrator-image containers with the Docker socket, whose trials are real trainer-image
containers beside them. Then `stbench status` and `stbench results` read the study back from
S3 only, as they would after a SageMaker launch.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

BIN = Path(os.environ.get("VIRTUAL_ENV", ".venv")) / "bin"
BUCKET = "rehearsal"
S3_ROOT = f"s3://{BUCKET}/studies"
TAG = "rehearse"
STUDY = ["--benchmark", "synthetic_curves", "--method", "RS", "ASHA", "--num_seeds", "2",
         "--n_workers", "1", "--max_wallclock_time", "25", "--epochs", "3",
         "--epoch_duration", "0.05"]

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    url = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=BUCKET)
    yield url
    server.stop()


def command(endpoint: str, *args: str) -> tuple[list[str], dict[str, str]]:
    """The stbench command line and environment: moto's test credentials, nothing real."""
    executable = BIN / "stbench" if (BIN / "stbench").exists() else Path("stbench")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    env.pop("AWS_PROFILE", None)
    return [str(executable), *args, "--s3_endpoint", endpoint], env


def stbench(endpoint: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    argv, env = command(endpoint, *args)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)


def start(endpoint: str, *args: str) -> subprocess.Popen:
    """A launch in the background, to be stopped or killed while it runs."""
    argv, env = command(endpoint, *args)
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def s3_keys(endpoint: str) -> list[str]:
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def our_containers(docker_client: object) -> list[object]:
    return docker_client.containers.list(all=True, filters={"label": "stbench.service"})


def test_launch_local_runs_the_study_and_status_and_results_read_it_from_s3(
        images: dict[str, str], docker_client: object, s3_endpoint: str,
        tmp_path: Path) -> None:
    launched = stbench(s3_endpoint, "launch", "--local", *STUDY, "--experiment_tag", TAG,
                       "--s3_root", S3_ROOT)
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert "4 orchestrator jobs launched, 0 skipped" in launched.stderr
    for method in ("rs", "asha"):
        for seed in (0, 1):
            assert f"{TAG}-synthetic-curves-{method}-{seed}-o00: Completed" in launched.stderr
    assert not our_containers(docker_client), "the launch left containers behind"

    keys = s3_keys(s3_endpoint)
    for method in ("RS", "ASHA"):
        for seed in (0, 1):
            results = [k for k in keys if k.endswith(f"/{method}/{seed}/results.jsonl")]
            assert len(results) == 1, keys

    status = stbench(s3_endpoint, "status", "--experiment_tag", TAG, "--local",
                     "--s3_root", S3_ROOT)
    assert status.returncode == 0, status.stderr
    rows = [line.split() for line in status.stdout.splitlines()[1:]]
    assert sorted((r[1], r[2]) for r in rows) == [("ASHA", "0"), ("ASHA", "1"), ("RS", "0"),
                                                  ("RS", "1")]
    assert all(r[3] == "Completed" and int(r[4]) >= 1 for r in rows), status.stdout

    results_root = tmp_path / "results"
    report = stbench(s3_endpoint, "results", "--experiment_tag", TAG, "--local",
                     "--s3_root", S3_ROOT, "--results_root", str(results_root))
    assert report.returncode == 0, report.stderr
    assert "fetched 4 experiments" in report.stderr
    assert "ASHA" in report.stdout and "RS" in report.stdout
    plot = results_root / TAG / "plots" / "synthetic_curves.png"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000
    metadata = json.loads(
        (results_root / TAG / "synthetic_curves" / "ASHA" / "1" / "metadata.json").read_text())
    assert metadata["status"] == "completed" and metadata["spec"]["backend"] == "docker"

    again = stbench(s3_endpoint, "launch", "--local", *STUDY, "--experiment_tag", TAG,
                    "--s3_root", S3_ROOT, timeout=60)
    assert again.returncode == 0, again.stderr
    assert "0 orchestrator jobs launched, 4 skipped" in again.stderr


@pytest.mark.parametrize("change, problem", [
    (["--image", "stbench-trainer:missing"], "image stbench-trainer:missing not found"),
    (["--s3_root", "s3://no-such-bucket/studies"], "S3 bucket no-such-bucket does not exist"),
    (["--benchmark", "nope"], "unknown benchmark 'nope'"),
])
def test_launch_local_bad_input_is_one_line_before_any_job(
        images: dict[str, str], docker_client: object, s3_endpoint: str,
        change: list[str], problem: str) -> None:
    before = set(s3_keys(s3_endpoint))
    args = ["launch", "--local", *STUDY, "--experiment_tag", "bad-input", "--s3_root", S3_ROOT,
            *change]
    result = stbench(s3_endpoint, *args, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and problem in result.stderr, result.stderr
    assert set(s3_keys(s3_endpoint)) == before
    assert not our_containers(docker_client)


def test_stopping_the_launch_stops_its_jobs_and_a_relaunch_resumes_from_s3(
        images: dict[str, str], docker_client: object, s3_endpoint: str,
        tmp_path: Path) -> None:
    """SIGTERM (or Ctrl-C) stops every job and removes every container; the results so far
    stay in S3, and launching again continues that experiment instead of starting over."""
    study = ["launch", "--local", "--benchmark", "synthetic_curves", "--method", "RS",
             "--n_workers", "1", "--max_num_trials", "10", "--max_wallclock_time", "300",
             "--epoch_duration", "0.05", "--experiment_tag", "stopped", "--s3_root", S3_ROOT]
    process = start(s3_endpoint, *study)
    deadline = time.time() + 120
    while not any(k.endswith("/RS/0/results.jsonl") and "/stopped/" in k
                  for k in s3_keys(s3_endpoint)):
        assert time.time() < deadline and process.poll() is None, "no results uploaded"
        time.sleep(1)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=90)
    assert process.returncode == 130, err
    assert "stopped-synthetic-curves-rs-0-o00: Stopped" in err, err
    assert not our_containers(docker_client), "a stopped launch left containers behind"
    status = stbench(s3_endpoint, "status", "--experiment_tag", "stopped", "--local",
                     "--s3_root", S3_ROOT)
    row = status.stdout.splitlines()[1].split()
    assert row[3] == "Stopped" and 1 <= int(row[4]) < 10, status.stdout

    resumed = stbench(s3_endpoint, *study, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "stopped-synthetic-curves-rs-0-o01: Completed" in resumed.stderr
    report = stbench(s3_endpoint, "results", "--experiment_tag", "stopped", "--local",
                     "--s3_root", S3_ROOT, "--results_root", str(tmp_path))
    folder = tmp_path / "stopped" / "synthetic_curves" / "RS" / "0"
    metadata = json.loads((folder / "metadata.json").read_text())
    last = {}
    for line in (folder / "results.jsonl").open():
        row = json.loads(line)
        last[row["trial_id"]] = row
    assert report.returncode == 0 and metadata["resumed"] is True
    assert set(last) == set(range(len(last))), "the relaunch reused or lost trial ids"
    # trials cut short by the stop stay as Interrupted; the budget counts the others
    finished = [t for t in last.values() if t["status"] != "Interrupted"]
    assert len(finished) == 10, [t["status"] for t in last.values()]


def test_cleanup_local_removes_what_a_killed_launch_left(
        images: dict[str, str], docker_client: object, s3_endpoint: str) -> None:
    """A launch killed outright (SIGKILL) cannot clean up: its containers keep running and
    its ledger says InProgress. `stbench cleanup --local` removes the study's containers
    (and only those) and marks the jobs Stopped, so a relaunch does not skip them."""
    study = ["launch", "--local", "--benchmark", "synthetic_curves", "--method", "RS",
             "--n_workers", "1", "--max_wallclock_time", "300", "--epoch_duration", "0.05",
             "--experiment_tag", "killed", "--s3_root", S3_ROOT]
    bystander = docker_client.containers.run(images["trainer"], entrypoint=["sleep", "600"],
                                             labels={"stbench.study": "killed-2"},
                                             network_mode="none", detach=True)
    try:
        process = start(s3_endpoint, *study)
        deadline = time.time() + 120
        while not any("/killed/" in k and k.endswith("results.jsonl")
                      for k in s3_keys(s3_endpoint)):
            assert time.time() < deadline and process.poll() is None, "no results uploaded"
            time.sleep(1)
        process.kill()
        process.wait(timeout=30)
        label = {"label": "stbench.study=killed"}
        assert docker_client.containers.list(all=True, filters=label), "nothing was left"

        cleanup = stbench(s3_endpoint, "cleanup", "--local", "--experiment_tag", "killed",
                          "--s3_root", S3_ROOT, "--yes")
        assert cleanup.returncode == 0, cleanup.stderr
        assert "1 jobs marked Stopped" in cleanup.stdout, cleanup.stdout
        assert not docker_client.containers.list(all=True, filters=label)
        assert not docker_client.volumes.list(filters=label)
        bystander.reload()
        assert bystander.status == "running", "cleanup touched another study's container"
        status = stbench(s3_endpoint, "status", "--experiment_tag", "killed", "--local",
                         "--s3_root", S3_ROOT)
        assert status.stdout.splitlines()[1].split()[3] == "Stopped", status.stdout
    finally:
        bystander.remove(force=True)
