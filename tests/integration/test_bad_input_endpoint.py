"""Bad input against the local SageMaker endpoint (issue 14, R5): the commands that talk to
AWS (launch, status, results, cleanup) stop with the same one line when AWS is reachable,
and the endpoint's buckets, objects and training jobs are the same before and after."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from bad_inputs import CASES, BadInput, prepare, run_case, tree
from bad_inputs import SAGEMAKER as SAGEMAKER_FLAGS

from stbench.emulator import Emulator, EmulatorConfig
from stbench.emulator.account import ensure_bucket, ensure_execution_role

pytestmark = [pytest.mark.docker]

AWS_COMMANDS = ("launch", "status", "results", "cleanup")
AWS_CASES = [case for case in CASES if case.command in AWS_COMMANDS]


@pytest.fixture(scope="module")
def endpoint(docker_client: Any) -> Iterator[Emulator]:
    """An endpoint holding the bucket and the role the cases name, so a write would show."""
    emulator = Emulator(EmulatorConfig()).start()
    env = emulator.environment()
    bucket = SAGEMAKER_FLAGS[SAGEMAKER_FLAGS.index("--s3_root") + 1].split("/")[2]
    ensure_bucket(env, bucket)
    ensure_execution_role(env)
    yield emulator
    emulator.close()



def snapshot(emulator: Emulator) -> dict[str, Any]:
    """Every bucket with its objects, and every training job with its status."""
    env = emulator.environment()
    session = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name=env["AWS_DEFAULT_REGION"])
    s3 = session.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"])
    sagemaker = session.client("sagemaker", endpoint_url=env["AWS_ENDPOINT_URL"])
    objects = {b["Name"]: sorted((o["Key"], o["ETag"]) for o in s3.list_objects_v2(
        Bucket=b["Name"]).get("Contents", [])) for b in s3.list_buckets()["Buckets"]}
    jobs = sorted((s["TrainingJobName"], s["TrainingJobStatus"]) for page in
                  sagemaker.get_paginator("list_training_jobs").paginate()
                  for s in page["TrainingJobSummaries"])
    return {"objects": objects, "jobs": jobs}


def test_every_command_that_talks_to_aws_is_covered() -> None:
    assert {case.command for case in AWS_CASES} == set(AWS_COMMANDS)


@pytest.mark.parametrize("case", AWS_CASES, ids=lambda case: f"{case.command}: {case.kind}")
def test_bad_input_writes_nothing_on_the_endpoint(case: BadInput, endpoint: Emulator,
                                                  tmp_path: Path) -> None:
    argv = prepare(case, tmp_path)
    before, files = snapshot(endpoint), tree(tmp_path)
    outcome = run_case(case, argv, tmp_path, endpoint.environment())
    lines = outcome.stderr.splitlines()
    assert (outcome.code, len(lines)) == (2, 1), outcome.stderr[-3000:]
    assert case.problem in lines[0] and case.fix in lines[0], lines[0]
    assert snapshot(endpoint) == before
    assert tree(tmp_path) == files
