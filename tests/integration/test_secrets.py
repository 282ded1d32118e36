"""No AWS credential in what stbench builds or writes, and hostile hyperparameters stay literal
on SageMaker (issue 14, R6).

The images are rebuilt with distinctive credentials in the environment (as a developer's
shell has them), then every file of every layer and the image config of `docker save` is
searched. A `run --backend sagemaker` on the local SageMaker endpoint with other distinctive
credentials is then searched everywhere it wrote: its output, the results folder, every
job's request as the endpoint describes it (hyperparameters, environment), every log line
and every S3 object.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from injection import (
    HOSTILE,
    check_literal,
    echoed_arguments,
    run_args,
    run_cli,
    write_benchmark,
)
from secret_scan import scan_images, scan_tree
from test_launch_emulator import FAST, pushed  # noqa: F401  (the module's fixture)

from stbench.emulator import Emulator, EmulatorConfig
from stbench.emulator.account import ensure_bucket, ensure_execution_role

pytestmark = [pytest.mark.docker, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BUILD_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIASTBENCHBUILD0R6X",
                     "AWS_SECRET_ACCESS_KEY": "stbenchBuildSecretR6/doNotLeakIntoImages0001",
                     "AWS_SESSION_TOKEN": "stbenchBuildTokenR6doNotLeak"}
RUN_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIASTBENCHRUN00R6XY",
                   "AWS_SECRET_ACCESS_KEY": "stbenchRunSecretR6/doNotLeakIntoJobs00000001",
                   "AWS_SESSION_TOKEN": "stbenchRunTokenR6doNotLeakIntoLogs"}


def needles(credentials: dict[str, str]) -> list[bytes]:
    return [value.encode() for value in credentials.values()]


def test_no_credential_in_any_image_layer(images: dict[str, str]) -> None:
    build = subprocess.run(["bash", str(REPO / "images" / "build.sh")], cwd=REPO,
                           env={**os.environ, **BUILD_CREDENTIALS}, capture_output=True,
                           text=True, timeout=1200)
    assert build.returncode == 0, build.stderr[-2000:]
    files, found = scan_images([images["trainer"], images["orchestrator"]],
                               needles(BUILD_CREDENTIALS))
    assert files > 1000  # every layer was opened, not just the manifest
    assert found == []


@pytest.fixture
def endpoint() -> Iterator[Emulator]:
    emulator = Emulator(EmulatorConfig(**FAST)).start()  # type: ignore[arg-type]
    yield emulator
    emulator.close()


def client(emulator: Emulator, service: str) -> Any:
    env = emulator.environment()
    return boto3.client(service, endpoint_url=env["AWS_ENDPOINT_URL"],  # type: ignore[call-overload]
                        region_name=env["AWS_DEFAULT_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def copy_everything(emulator: Emulator, bucket: str, into: Path) -> None:
    """What the endpoint holds after the run: every job's description, every log event,
    every object of the bucket, as files to search."""
    sagemaker, logs, s3 = (client(emulator, s) for s in ("sagemaker", "logs", "s3"))
    jobs = [s["TrainingJobName"] for page in sagemaker.get_paginator("list_training_jobs")
            .paginate() for s in page["TrainingJobSummaries"]]
    assert jobs
    for name in jobs:
        description = sagemaker.describe_training_job(TrainingJobName=name)
        (into / "jobs").mkdir(parents=True, exist_ok=True)
        (into / "jobs" / f"{name}.json").write_text(json.dumps(description, default=str))
    events = [event["message"] for page in logs.get_paginator("filter_log_events").paginate(
        logGroupName="/aws/sagemaker/TrainingJobs") for event in page["events"]]
    assert events
    (into / "logs.txt").write_text("\n".join(events))
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            path = into / "s3" / item["Key"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())


def test_sagemaker_trials_keep_credentials_out_and_arguments_literal(
        endpoint: Emulator, pushed: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    env = endpoint.environment()
    role, bucket = ensure_execution_role(env), ensure_bucket(env, "hostile")
    benchmark = write_benchmark(tmp_path / "bench", HOSTILE)
    user_env = {**os.environ, **env, **RUN_CREDENTIALS, "AWS_EC2_METADATA_DISABLED": "true"}
    user_env.pop("AWS_PROFILE", None)
    done = run_cli(run_args(benchmark, tmp_path / "results", "--backend", "sagemaker",
                            "--image", pushed["trainer"], "--role", role,
                            "--s3_root", f"{bucket}/r6"), tmp_path, user_env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    check_literal(echoed_arguments(tmp_path / "results"), [tmp_path / "bench", tmp_path],
                  HOSTILE)

    written = tmp_path / "written"
    copy_everything(endpoint, "hostile", written)
    (written / "output.txt").write_text(done.stdout + done.stderr)
    for folder in (written, tmp_path / "results"):
        files, found = scan_tree(folder, needles(RUN_CREDENTIALS))
        assert files > 0 and found == [], folder
