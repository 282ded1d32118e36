"""ECR on the local SageMaker endpoint: `stbench images push` (what `make push` runs) with no
--registry takes the path it takes on AWS, the pushed images are what the ECR API reports, a
training job pulls them, and the launch checks treat them as ECR images.

One endpoint and one push serve the module; the push goes through the CLI in a subprocess
whose environment is the endpoint's, as a user's shell would be after `stbench emulator`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import docker
import pytest
from botocore.exceptions import ClientError

from stbench.backends.jobs.sagemaker_checks import check_image
from stbench.emulator import Emulator, EmulatorConfig
from stbench.emulator.account import TRUST_SAGEMAKER
from stbench.launch.push import Target, push_tag
from stbench.model.errors import UserError

pytestmark = pytest.mark.docker

STBENCH = Path(sys.executable).parent / "stbench"
REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/stbench-ecr-test"
CONFIG = EmulatorConfig(cold_start_seconds=0.2, warm_start_seconds=0.05, log_delay_seconds=0.5,
                        stop_grace_seconds=2.0)


@dataclass(frozen=True)
class Pushed:
    emulator: Emulator
    uris: dict[str, str]  # role -> URI printed on stdout
    digests: list[str]  # "digest sha256:…" progress lines on stderr, in push order
    started: float
    ended: float

    def client(self, service: str) -> Any:
        environment = self.emulator.environment()
        return boto3.client(service, endpoint_url=environment["AWS_ENDPOINT_URL"],
                            region_name=REGION, aws_access_key_id="testing",
                            aws_secret_access_key="testing")


def _environment(emulator: Emulator, home: Path) -> dict[str, str]:
    """The endpoint's variables and nothing of the host's AWS setup."""
    (home / "empty").write_text("")
    kept = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    return {**kept, "AWS_CONFIG_FILE": str(home / "empty"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "empty"),
            "AWS_EC2_METADATA_DISABLED": "true", **emulator.environment()}


@pytest.fixture(scope="module")
def pushed(images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Pushed]:
    with Emulator(CONFIG) as emulator:
        started = time.time()
        result = subprocess.run(
            [str(STBENCH), "images", "push", "--roles", "trainer", "orchestrator",
             "--tag", "latest"], capture_output=True, text=True, timeout=600,
            env=_environment(emulator, tmp_path_factory.mktemp("home")))
        ended = time.time()
        assert result.returncode == 0, result.stderr[-2000:]
        uris = dict(line.split() for line in result.stdout.splitlines())
        digests = re.findall(r"digest (sha256:[0-9a-f]{64})", result.stderr)
        yield Pushed(emulator, uris, digests, started, ended)
        registry = emulator.ecr_registry
    engine = docker.from_env()  # the endpoint untagged what named its registry
    left = [tag for image in engine.images.list() for tag in image.tags
            if tag.startswith(f"{registry}/")]
    engine.close()
    assert not left


def test_push_goes_to_the_endpoints_ecr(pushed: Pushed) -> None:
    registry = pushed.emulator.ecr_registry
    assert pushed.uris == {"trainer": f"{registry}/stbench-trainer:latest",
                           "orchestrator": f"{registry}/stbench-orchestrator:latest"}
    ecr = pushed.client("ecr")
    # named: moto's state is the process's, so other modules' stacks may hold more of them
    names = [f"stbench-{role}" for role in ("trainer", "orchestrator")]
    repositories = ecr.describe_repositories(repositoryNames=names)["repositories"]
    assert {r["repositoryName"]: r["repositoryUri"] for r in repositories} == {
        name: f"{registry}/{name}" for name in names}
    token = ecr.get_authorization_token()["authorizationData"][0]
    assert token["proxyEndpoint"] == f"http://{registry}"
    assert base64.b64decode(token["authorizationToken"]).decode().startswith("AWS:")

    image = ecr.describe_images(repositoryName="stbench-trainer",
                                imageIds=[{"imageTag": "latest"}])["imageDetails"]
    assert len(image) == 1 and image[0]["imageTags"] == ["latest"]
    assert image[0]["imageDigest"] == pushed.digests[0]  # what the push printed
    assert image[0]["imageSizeInBytes"] > 10_000_000  # compressed layers, not the manifest
    pushed_at = image[0]["imagePushedAt"].timestamp()
    assert pushed.started - 1 <= pushed_at <= pushed.ended + 1
    assert ecr.list_images(repositoryName="stbench-trainer")["imageIds"] == [
        {"imageDigest": pushed.digests[0], "imageTag": "latest"}]
    got = ecr.batch_get_image(repositoryName="stbench-trainer",
                              imageIds=[{"imageTag": "latest"}, {"imageTag": "nope"}])
    manifest = got["images"][0]["imageManifest"].encode()
    assert "sha256:" + hashlib.sha256(manifest).hexdigest() == pushed.digests[0]
    assert [f["failureCode"] for f in got["failures"]] == ["ImageNotFound"]
    with pytest.raises(ClientError, match="ImageNotFoundException"):
        ecr.describe_images(repositoryName="stbench-trainer", imageIds=[{"imageTag": "nope"}])
    with pytest.raises(ClientError, match="RepositoryNotFoundException"):
        ecr.describe_images(repositoryName="stbench-nothing")
    with pytest.raises(ClientError, match="RepositoryNotEmptyException"):
        ecr.delete_repository(repositoryName="stbench-trainer")


def test_the_registry_wants_ecrs_token(pushed: Pushed) -> None:
    """As on ECR, a pull without GetAuthorizationToken's credentials is refused."""
    engine = docker.from_env()  # a client that never logged in
    try:
        with pytest.raises(docker.errors.APIError, match="no basic auth credentials"):
            engine.api.inspect_distribution(pushed.uris["trainer"])
    finally:
        engine.close()


def test_checks_treat_endpoint_images_as_ecr_images(
        pushed: Pushed, registry: str, isolated_aws_env: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in pushed.emulator.environment().items():
        monkeypatch.setenv(key, value)
    session = boto3.session.Session(region_name=REGION)
    check_image(session, REGION, pushed.uris["trainer"])  # found: no error
    missing = pushed.uris["trainer"].replace(":latest", ":nope")
    with pytest.raises(UserError, match=re.escape(
            f"image {missing} not found in ECR (no tag nope): run `make push`")):
        check_image(session, REGION, missing)
    # a plain registry on 127.0.0.1 (`make push REGISTRY=...`) is asked over its own API
    elsewhere = f"{registry}/stbench-trainer:nope"
    with pytest.raises(UserError, match=re.escape(
            f"image {elsewhere} not found in registry {registry}: run `make push REGISTRY=")):
        check_image(session, REGION, elsewhere)


def test_a_job_pulls_the_pushed_trainer(pushed: Pushed) -> None:
    engine = docker.from_env()
    uri = pushed.uris["trainer"]
    engine.images.remove(uri, noprune=True)  # the push's local tag: the job must pull
    sagemaker = pushed.client("sagemaker")
    request = {
        "AlgorithmSpecification": {"TrainingImage": uri, "TrainingInputMode": "File",
                                   "ContainerEntrypoint": ["python", "-c", "print('pulled')"]},
        "RoleArn": ROLE, "OutputDataConfig": {"S3OutputPath": "s3://ecr-test/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                           "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 120}}
    pushed.client("s3").create_bucket(Bucket="ecr-test")
    iam = pushed.client("iam")  # a role that may pull, log and upload, as SageMaker needs
    iam.create_role(RoleName=ROLE.rsplit("/", 1)[1], AssumeRolePolicyDocument=TRUST_SAGEMAKER)
    iam.put_role_policy(RoleName=ROLE.rsplit("/", 1)[1], PolicyName="job", PolicyDocument=(
        json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*",
                    "Action": ["ecr:GetAuthorizationToken", "ecr:BatchGetImage",
                               "ecr:GetDownloadUrlForLayer", "logs:CreateLogStream",
                               "logs:PutLogEvents", "s3:GetObject", "s3:PutObject",
                               "s3:ListBucket"]}]})))
    with pytest.raises(ClientError, match="Cannot find the requested image"):
        sagemaker.create_training_job(TrainingJobName="ecr-missing", **{
            **request, "AlgorithmSpecification": {
                **request["AlgorithmSpecification"], "TrainingImage": uri + "-nope"}})
    sagemaker.create_training_job(TrainingJobName="ecr-pull", **request)
    deadline = time.monotonic() + 180
    while (job := sagemaker.describe_training_job(TrainingJobName="ecr-pull"))[
            "TrainingJobStatus"] == "InProgress" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    repository = uri.rsplit(":", 1)[0]  # pulled from the registry: the pushed manifest
    assert f"{repository}@{pushed.digests[0]}" in engine.images.get(uri).attrs["RepoDigests"]
    engine.close()


def test_a_moved_tag_leaves_an_untagged_image(pushed: Pushed) -> None:
    """As on ECR: pushing a tag again keeps the old manifest, untagged; listings page."""
    ecr = pushed.client("ecr")
    token = ecr.get_authorization_token()["authorizationData"][0]
    user, password = base64.b64decode(token["authorizationToken"]).decode().split(":", 1)
    target = Target(pushed.emulator.ecr_registry, {"username": user, "password": password})
    repository = f"{pushed.emulator.ecr_registry}/stbench-orchestrator"
    engine = docker.from_env()
    digests = []
    for local in ("stbench-runtime:latest", "stbench-trainer:latest"):
        engine.images.get(local).tag(repository, "moved")
        digests.append(push_tag(engine, repository, "moved", target, lambda _: None))
    engine.close()
    assert digests[0] != digests[1]
    untagged = ecr.describe_images(repositoryName="stbench-orchestrator",
                                   filter={"tagStatus": "UNTAGGED"})["imageDetails"]
    assert [(d["imageDigest"], "imageTags" in d) for d in untagged] == [(digests[0], False)]
    pages, token_args = [], {}
    while True:
        page = ecr.list_images(repositoryName="stbench-orchestrator", maxResults=1, **token_args)
        pages.append(page["imageIds"])
        if "nextToken" not in page:
            break
        token_args = {"nextToken": page["nextToken"]}
    assert all(len(ids) == 1 for ids in pages)
    assert sorted((i["imageDigest"], i.get("imageTag")) for ids in pages for i in ids) == sorted([
        (pushed.digests[2], "latest"), (digests[0], None), (digests[1], "moved")])
