"""A user's own benchmark folder (script, YAML, requirements.txt installing a local wheel,
a data folder as input channel) on the Docker back-end with warm slots: the folder travels as
the `code` channel, the first trial on an instance installs the requirements and a trial on
a reused instance skips the install."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import test_launch_emulator as launch_e2e
from user_benchmark import write_user_benchmark

from stbench.cli.main import main
from stbench.emulator.account import ensure_bucket, ensure_execution_role

pytestmark = pytest.mark.docker


def job_logs(folder: Path) -> dict[str, str]:
    return {path.stem: path.read_text() for path in sorted(folder.glob("jobs/*/logs/*.log"))}


def test_user_benchmark_runs_on_docker_warm_slots_installing_once(
        images: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    yaml = write_user_benchmark(tmp_path / "src", data=True)
    code = main(["run", "--benchmark", str(yaml), "--method", "RS", "--backend", "docker",
                 "--warm_pool", "--n_workers", "1", "--max_num_trials", "3",
                 "--max_wallclock_time", "120", "--experiment_tag", "mine",
                 "--results_root", str(tmp_path / "results")])
    assert code == 0, capsys.readouterr().err
    folder = tmp_path / "results" / "mine" / "my_bench" / "RS" / "0"
    rows = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    trials = {row["trial_id"]: row for row in rows}
    assert len(trials) == 3 and all(row["status"] == "Completed" for row in trials.values())
    for row in rows:  # the wheel's OFFSET, the data channel's scale, a file beside the script
        metrics, x = row["metrics"], row["config"]["x"]
        assert metrics["loss"] == pytest.approx(3 * (x - 0.25) ** 2 / metrics["epoch"])
        assert metrics["scale"] == 3 and metrics["helper"] == 7
    assert [bool(trials[t]["started_on_warm_pool_of"]) for t in sorted(trials)] == \
        [False, True, True]
    logs = list(job_logs(folder).values())
    assert len(logs) == 3
    assert "installed requirements.txt" in logs[0]
    assert all("already installed" in log and "pip:" not in log for log in logs[1:]), \
        "a trial on a reused instance skips the install"
    stored = list((tmp_path / "results" / "mine" / "code").glob("*.tar.gz"))
    assert len(stored) == 1, "the folder is stored once for the study, by its content"


# --- stbench launch on the local SageMaker endpoint ----------------------------------------

LAUNCH_TAG = "mine-launched"
pushed = launch_e2e.pushed  # the images in a registry, an endpoint with a warm-pool quota
warm_endpoint = launch_e2e.warm_endpoint
run, wait_for_orchestrators = launch_e2e.run, launch_e2e.wait_for_orchestrators


def trainer_log(emulator: Any, job: str) -> str:
    env = emulator.environment()
    logs = boto3.client("logs", endpoint_url=env["AWS_ENDPOINT_URL"],
                        region_name=env["AWS_DEFAULT_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    pages = logs.get_paginator("filter_log_events").paginate(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=job)
    return "\n".join(e["message"] for page in pages for e in page["events"]
                     if e["logStreamName"].startswith(f"{job}/"))


@pytest.mark.slow
def test_user_benchmark_launched_on_the_local_endpoint(
        warm_endpoint: Any, pushed: dict[str, str], tmp_path: Path) -> None:
    """The orchestrator job gets the folder as its `code` channel too, its trials get the same
    stored archive (packed again in the job: same content, same key, no second upload) and an
    S3 data channel; status and cleanup find the study although its benchmark is no built-in."""
    env = warm_endpoint.environment()
    yaml = write_user_benchmark(tmp_path / "src")
    bucket = ensure_bucket(env, "user-bench")
    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"],
                      region_name=env["AWS_DEFAULT_REGION"],
                      aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    s3.put_object(Bucket=bucket.removeprefix("s3://"), Key="data/extra/scale.txt", Body=b"3\n")
    launched = run(warm_endpoint, "launch", "--benchmark", str(yaml), "--method", "RS",
                   "--n_workers", "1", "--max_num_trials", "3", "--max_wallclock_time", "150",
                   "--warm_pool", "1", "--inputs", f"extra={bucket}/data/extra/",
                   "--image", pushed["trainer"], "--experiment_tag", LAUNCH_TAG,
                   "--role", ensure_execution_role(env), "--s3_root", f"{bucket}/studies")
    assert launched.returncode == 0, launched.stderr[-2000:]
    jobs = wait_for_orchestrators(warm_endpoint, LAUNCH_TAG, 1)
    [(orchestrator, described)] = [(n, d) for n, d in jobs.items() if n.endswith("-o00")]
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    code_uri = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
                for c in described["InputDataConfig"]}["code"]
    stored = s3.list_objects_v2(Bucket=bucket.removeprefix("s3://"),
                                Prefix=f"studies/{LAUNCH_TAG}/code/")["Contents"]
    assert [f"{bucket}/{item['Key']}" for item in stored] == [code_uri]

    trials = sorted(n for n in jobs if not n.endswith("-o00"))
    assert len(trials) == 3
    for name in trials:
        job = jobs[name]
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
                    for c in job["InputDataConfig"]}
        assert channels == {"code": code_uri, "extra": f"{bucket}/data/extra/"}
    logs = [trainer_log(warm_endpoint, name) for name in trials]
    assert "installed requirements.txt" in logs[0]
    assert any("already installed" in log for log in logs[1:]), "a reused pool skips pip"
    assert all('"scale": 3.0' in log for log in logs), "the S3 data channel reached the script"

    status = run(warm_endpoint, "status", "--experiment_tag", LAUNCH_TAG)
    assert status.returncode == 0, status.stderr
    [row] = [line.split() for line in status.stdout.splitlines()[1:]]
    assert row[:5] == ["my_bench", "RS", "0", "Completed", "3"], status.stdout
    cleaned = run(warm_endpoint, "cleanup", "--experiment_tag", LAUNCH_TAG, "--yes")
    assert cleaned.returncode == 0, cleaned.stderr
    assert f"experiment tag '{LAUNCH_TAG}'" in cleaned.stdout and "4 jobs" in cleaned.stdout
