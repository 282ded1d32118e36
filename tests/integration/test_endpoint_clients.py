"""Other AWS clients than stbench's own boto3 calls, pointed at the local SageMaker endpoint the
way a user points them at AWS: the SageMaker Python SDK 3.x's `ModelTrainer` in SageMaker-job
mode (not its local mode), and the AWS CLI.

The SDK builds its STS clients with AWS's own URL as an explicit `endpoint_url`, which wins
over `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_STS`: no supported setting redirects them. It
asks STS only for the account (its default bucket's name), so a `Session` given
`default_bucket` never does. It also sends telemetry to an S3 host of AWS unless its config
says `TelemetryOptOut: true`. Every connection these tests open must go to the loopback
interface: a guard refuses any other address, so a call that leaves for AWS fails the test.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from stbench.emulator import Emulator, EmulatorConfig
from stbench.emulator.account import deploy_stack, ensure_bucket, ensure_execution_role

pytestmark = pytest.mark.docker

AWS = Path(sys.executable).parent / "aws"
BUCKET = "sdk-jobs"
# the SDK's user config (SAGEMAKER_USER_CONFIG_OVERRIDE): no telemetry requests to AWS
SDK_CONFIG = """\
SchemaVersion: '1.0'
SageMaker:
  PythonSDK:
    Modules:
      TelemetryOptOut: true
"""
TRIAL = {"stbench_benchmark": "mlp_digits", "n_units": 32, "learning_rate": 0.01,
         "alpha": 1e-4, "batch_size": 32, "epochs": 2}


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Refuse (and record) every connection or name lookup that is not for this machine."""
    refused: list[Any] = []
    connect, lookup = socket.socket.connect, socket.getaddrinfo

    def guarded_connect(sock: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and not ipaddress.ip_address(address[0]).is_loopback:
            refused.append(address)
            raise ConnectionRefusedError(f"test guard: no traffic to {address}")
        return connect(sock, address)

    def guarded_lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in (None, "localhost", "127.0.0.1", "::1"):
            refused.append(host)
            raise socket.gaierror(f"test guard: no lookup of {host}")
        return lookup(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_lookup)
    return refused


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Emulator]:
    emulator = Emulator(EmulatorConfig(cold_start_seconds=0.5, log_delay_seconds=0.5)).start()
    yield emulator
    emulator.close()


@pytest.fixture
def user_env(endpoint: Emulator, isolated_aws_env: None,
             monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """What a user's shell holds after pasting the line `stbench emulator` prints."""
    for name, value in endpoint.environment().items():
        monkeypatch.setenv(name, value)
    return endpoint.environment()


def test_the_sdks_model_trainer_runs_a_trial_job_with_our_image_on_the_endpoint(
        user_env: dict[str, str], images: dict[str, str], loopback_only: list[Any],
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    try:
        from sagemaker.core.helper.session_helper import Session
        from sagemaker.core.training.configs import Compute, OutputDataConfig
        from sagemaker.train import ModelTrainer
        from sagemaker.train.model_trainer import Mode
    except ImportError:
        pytest.fail("no SageMaker Python SDK: pip install -e '.[dev]'", pytrace=False)
    (tmp_path / "sdk.yaml").write_text(SDK_CONFIG)
    monkeypatch.setenv("SAGEMAKER_USER_CONFIG_OVERRIDE", str(tmp_path / "sdk.yaml"))
    bucket = ensure_bucket(user_env, BUCKET)
    session = Session(boto_session=boto3.session.Session(), default_bucket=BUCKET)
    trainer = ModelTrainer(
        training_image=images["trainer"], training_mode=Mode.SAGEMAKER_TRAINING_JOB,
        role=ensure_execution_role(user_env), sagemaker_session=session,
        compute=Compute(instance_type="ml.m5.large", instance_count=1),
        base_job_name="sdk-trial", hyperparameters=TRIAL,
        output_data_config=OutputDataConfig(s3_output_path=f"{bucket}/output"))
    trainer.train(wait=True, logs=False)

    name = trainer._latest_training_job.training_job_name
    job = boto3.client("sagemaker").describe_training_job(TrainingJobName=name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    events = job_events(boto3.client("logs").filter_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=name), name)
    reports = [e["message"] for e in events if e["message"].startswith("[tune-metric]")]
    assert len(reports) == TRIAL["epochs"], [e["message"] for e in events][-20:]
    assert loopback_only == []


def test_the_sdks_role_check_gets_the_answer_aws_gives_for_the_templates_role(
        user_env: dict[str, str], loopback_only: list[Any], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """The SDK asks IAM's policy simulator whether the role may do what its jobs need: the
    template's least-privilege role lacks two of those (CloudWatch metrics, and the EC2
    network interfaces of VPC jobs, neither of which stbench's jobs use), and the SDK refuses
    it before any job exists, naming them, as it would on AWS."""
    from sagemaker.core.helper.iam_role_resolver import RoleValidationError
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.training.configs import Compute
    from sagemaker.train import ModelTrainer
    from sagemaker.train.model_trainer import Mode

    (tmp_path / "sdk.yaml").write_text(SDK_CONFIG)
    monkeypatch.setenv("SAGEMAKER_USER_CONFIG_OVERRIDE", str(tmp_path / "sdk.yaml"))
    role = deploy_stack(user_env)["Role"]
    session = Session(boto_session=boto3.session.Session(), default_bucket=BUCKET)
    with pytest.raises(RoleValidationError) as refused:
        ModelTrainer(training_image="stbench-trainer:latest", role=role,
                     training_mode=Mode.SAGEMAKER_TRAINING_JOB, sagemaker_session=session,
                     compute=Compute(instance_type="ml.m5.large", instance_count=1))
    listed = re.search(r"Missing permissions: (.+)", str(refused.value))
    assert listed, str(refused.value)
    missing = set(listed.group(1).split(", "))
    assert "cloudwatch:PutMetricData" in missing  # and ecr:GetAuthorizationToken is granted
    assert all(action.startswith(("cloudwatch:", "ec2:")) for action in missing), missing
    assert loopback_only == []


def job_events(page: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The job's own events: the endpoint's FilterLogEvents ignores the stream prefix (moto's
    gap, docs/emulator.md), so other jobs' streams come along."""
    return [e for e in page["events"] if e["logStreamName"].startswith(f"{name}/")]


def aws_cli(*args: str) -> Any:
    result = subprocess.run([str(AWS), *args, "--output", "json"], capture_output=True,
                            text=True, timeout=120, env=os.environ.copy())
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_the_aws_cli_shows_what_boto3_shows(user_env: dict[str, str],
                                            images: dict[str, str]) -> None:
    if not shutil.which(str(AWS)):
        pytest.fail("no AWS CLI in the venv: pip install -e '.[dev]'", pytrace=False)
    sm = boto3.client("sagemaker")
    name = "cli-compare"
    sm.create_training_job(
        TrainingJobName=name, RoleArn=ensure_execution_role(user_env),
        AlgorithmSpecification={"TrainingImage": images["trainer"],
                                "TrainingInputMode": "File"},
        HyperParameters={k: json.dumps(v) for k, v in TRIAL.items()},
        OutputDataConfig={"S3OutputPath": f"{ensure_bucket(user_env, BUCKET)}/cli"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1,
                        "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 600})
    sm.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName=name, WaiterConfig={"Delay": 2, "MaxAttempts": 150})

    by_cli = aws_cli("sagemaker", "describe-training-job", "--training-job-name", name)
    by_boto3 = sm.describe_training_job(TrainingJobName=name)
    by_boto3.pop("ResponseMetadata")
    assert by_cli["TrainingJobStatus"] == "Completed"
    assert by_cli.keys() == by_boto3.keys()
    for key in ("HyperParameters", "ResourceConfig", "BillableTimeInSeconds",
                "SecondaryStatus", "ModelArtifacts", "AlgorithmSpecification"):
        assert by_cli[key] == by_boto3[key], key
    assert [t["Status"] for t in by_cli["SecondaryStatusTransitions"]] == [
        t["Status"] for t in by_boto3["SecondaryStatusTransitions"]]

    group = "/aws/sagemaker/TrainingJobs"
    logs_cli = aws_cli("logs", "filter-log-events", "--log-group-name", group,
                       "--log-stream-name-prefix", name)
    logs_boto3 = boto3.client("logs").filter_log_events(logGroupName=group,
                                                        logStreamNamePrefix=name)
    messages = [e["message"] for e in job_events(logs_cli, name)]
    assert messages == [e["message"] for e in job_events(logs_boto3, name)]
    assert sum(m.startswith("[tune-metric]") for m in messages) == TRIAL["epochs"]
