"""The requests the SageMaker adapter sends, against moto (in-process, no network), and its
answers to exact SageMaker replies given with botocore's Stubber (error mappings, releases
raced or denied, empty log pages with a token).

moto has no training-job lifecycle (its jobs are `Completed` at once): how the adapter follows
jobs that run, end, keep pools and log late is tested on the local SageMaker endpoint
(test_sagemaker_polls.py, test_sagemaker_pools.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from stbench.backends.jobs.job_requests import JobTemplate, trial_request
from stbench.backends.jobs.job_service import CapacityError, Throttled
from stbench.backends.jobs.sagemaker import SageMakerJobService
from stbench.model.container_contract import end_line
from stbench.model.job_statuses import COMPLETED
from stbench.model.naming import MAX_JOB_NAME, experiment_base, job_name

REGION = "us-east-1"
BASE = experiment_base("moto-study", "synthetic_curves", "ASHA", 3)
TEMPLATE = JobTemplate(
    image="123456789012.dkr.ecr.us-east-1.amazonaws.com/stbench-trainer:latest",
    benchmark="synthetic_curves", instance_type="ml.c5.xlarge",
    checkpoint_root="s3://stbench-bucket/moto-study/checkpoints",
    output_root="s3://stbench-bucket/moto-study/output/",
    role_arn="arn:aws:iam::123456789012:role/stbench", keep_alive_seconds=600,
    environment={"STBENCH_METRICS": "stdout"}, tags={"stbench:experiment": "moto-study"},
)
CONFIG = {"x": 0.5, "log_lr": -2.0, "width": 64, "epochs": 3, "flag": True, "name": "relu"}


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.session.Session]:
    """Fake credentials and a mocked AWS: nothing here can reach the real one."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing", "AWS_SECURITY_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield boto3.session.Session(region_name=REGION)


def service_for(session: boto3.session.Session) -> SageMakerJobService:
    return SageMakerJobService(session, job_base=BASE, poll_seconds=0.0)


def create_jobs(service: SageMakerJobService, count: int, keep_alive: bool = True) -> list[str]:
    """Jobs created through the adapter (moto stores them; they never run)."""
    names = []
    for trial_id in range(count):
        name = job_name(BASE, trial_id)
        request = trial_request(TEMPLATE, name, trial_id, CONFIG)
        if not keep_alive:
            request["ResourceConfig"].pop("KeepAlivePeriodInSeconds")
        service.create_training_job(request)
        names.append(name)
    return names


def report(**metrics: Any) -> str:
    return "[tune-metric]: " + json.dumps(metrics)


def described(name: str, status: str, **fields: Any) -> dict[str, Any]:
    """A DescribeTrainingJob answer as SageMaker gives it (for Stubber): required fields,
    keep-alive 600, and `fields` (e.g. BillableTimeInSeconds, WarmPoolStatus)."""
    return {
        "TrainingJobName": name, "TrainingJobArn": f"arn:{name}",
        "TrainingJobStatus": status, "SecondaryStatus": status,
        "AlgorithmSpecification": {"TrainingInputMode": "File"},
        "ModelArtifacts": {"S3ModelArtifacts": "s3://stbench-bucket/model.tar.gz"},
        "ResourceConfig": {"InstanceType": "ml.c5.xlarge", "InstanceCount": 1,
                           "VolumeSizeInGB": 30, "KeepAlivePeriodInSeconds": 600},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60}, "CreationTime": 1.0,
        "LastModifiedTime": time.time(), **fields,
    }


# --- requests -----------------------------------------------------------------------------


def test_create_sends_the_request_as_is(session: boto3.session.Session) -> None:
    service = service_for(session)
    sent: list[dict[str, Any]] = []
    service.sm.meta.events.register(
        "provide-client-params.sagemaker.CreateTrainingJob",
        lambda params, **kwargs: sent.append(json.loads(json.dumps(params))),
    )
    name = job_name(BASE, 7)
    request = trial_request(TEMPLATE, name, 7, CONFIG)
    service.create_training_job(request)

    assert sent == [request]
    assert len(name) <= MAX_JOB_NAME
    stored = session.client("sagemaker").describe_training_job(TrainingJobName=name)
    hyperparameters = stored["HyperParameters"]
    assert hyperparameters == request["HyperParameters"]
    assert all(isinstance(value, str) for value in hyperparameters.values())
    assert hyperparameters["flag"] == "true" and hyperparameters["width"] == "64"
    assert stored["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 600
    assert stored["ResourceConfig"]["InstanceType"] == "ml.c5.xlarge"
    assert stored["CheckpointConfig"]["S3Uri"] == "s3://stbench-bucket/moto-study/checkpoints/7/"
    assert stored["RoleArn"] == TEMPLATE.role_arn
    tags = session.client("sagemaker").list_tags(ResourceArn=stored["TrainingJobArn"])["Tags"]
    assert {t["Key"]: t["Value"] for t in tags} == {
        "stbench:experiment": "moto-study", "stbench:trial-id": "7",
    }


def test_stop_and_release_send_the_documented_requests(
        session: boto3.session.Session) -> None:
    """A release first reads the pool (DescribeTrainingJob), then ends it while it is there."""
    service = service_for(session)
    name, raced, denied = (job_name(BASE, trial) for trial in (1, 2, 3))
    available = {"Status": "Available", "ResourceRetainedBillableTimeInSeconds": 0}
    with Stubber(service.sm) as stub:
        stub.add_response("stop_training_job", {}, {"TrainingJobName": name})
        stub.add_client_error(
            "stop_training_job", "ValidationException",
            "The request was rejected because the training job is in status Completed.",
            expected_params={"TrainingJobName": name},
        )
        for job, answer in ((name, None), (raced, "ValidationException"),
                            (denied, "AccessDeniedException")):
            release = {"TrainingJobName": job, "ResourceConfig": {"KeepAlivePeriodInSeconds": 0}}
            stub.add_response("describe_training_job", described(
                job, COMPLETED, WarmPoolStatus=available), {"TrainingJobName": job})
            if answer is None:
                stub.add_response("update_training_job", {"TrainingJobArn": f"arn:{job}"},
                                  release)
            else:  # reused meanwhile by another job; or no permission
                stub.add_client_error("update_training_job", answer,
                                      "You can only update KeepAlivePeriodInSeconds of a "
                                      "training job with an active warm pool." if
                                      answer == "ValidationException" else "no",
                                      expected_params=release)
        service.stop_training_job(name)
        service.stop_training_job(name)  # ended meanwhile: nothing to do
        service.release_warm_pool(name)
        service.release_warm_pool(name)  # released already: no second call
        service.release_warm_pool(raced)  # no pool any more: nothing to do
        with pytest.raises(ClientError, match="AccessDenied"):
            service.release_warm_pool(denied)
        stub.assert_no_pending_responses()


def test_release_skips_jobs_that_cannot_have_a_pool(session: boto3.session.Session) -> None:
    service = service_for(session)
    [name] = create_jobs(service, 1, keep_alive=False)
    with Stubber(service.sm):  # any call would fail: nothing is stubbed
        service.release_warm_pool(name)


def test_error_mapping(session: boto3.session.Session) -> None:
    service = service_for(session)
    request = trial_request(TEMPLATE, job_name(BASE, 0), 0, CONFIG)
    with Stubber(service.sm) as stub:
        stub.add_client_error(
            "create_training_job", "ResourceLimitExceeded",
            "The account-level service limit 'ml.c5.xlarge for training job usage' is 2 "
            "Instances, with current utilization of 2 Instances and a request delta of 1.",
        )
        stub.add_client_error(
            "create_training_job", "ResourceLimitExceeded",
            "The account-level service limit 'ml.c5.xlarge for training warm pool usage' is "
            "0 Instances.",
        )
        stub.add_client_error("create_training_job", "ThrottlingException", "Rate exceeded")
        stub.add_response("create_training_job", {"TrainingJobArn": f"arn:{BASE}-t000000-r00"})
        stub.add_client_error("list_training_jobs", "ThrottlingException", "Rate exceeded")
        stub.add_client_error("create_training_job", "ValidationException", "bad request")
        with pytest.raises(CapacityError, match="'ml.c5.xlarge for training job usage'"):
            service.create_training_job(request)
        with pytest.raises(CapacityError, match="'ml.c5.xlarge for training warm pool usage'"):
            service.create_training_job(request)
        with pytest.raises(Throttled, match="CreateTrainingJob"):
            service.create_training_job(request)
        service.create_training_job(request)  # a running job: the next poll lists
        with pytest.raises(Throttled, match="ListTrainingJobs"):
            service.describe_training_jobs([request["TrainingJobName"]])
        with pytest.raises(ClientError, match="bad request"):
            service.create_training_job(request)
        stub.assert_no_pending_responses()
    with Stubber(service.logs) as stub:
        stub.add_client_error("filter_log_events", "ThrottlingException", "Rate exceeded")
        with pytest.raises(Throttled, match="FilterLogEvents"):
            service.read_metrics([request["TrainingJobName"]])
        stub.assert_no_pending_responses()
    assert service.read_metrics([request["TrainingJobName"]]) == {}  # no log group yet


def test_log_pages_may_be_empty_and_carry_a_token(session: boto3.session.Session) -> None:
    """FilterLogEvents may answer an empty page with a nextToken (moto never does): the read
    goes on to the last page."""
    service = service_for(session)
    name = job_name(BASE, 0)
    stream = f"{name}/algo-1-1700000000"
    events = [{"logStreamName": stream, "timestamp": int(time.time() * 1000) + i,
               "message": message, "eventId": str(i)}
              for i, message in enumerate([report(loss=0.5, epoch=1), end_line(1)])]
    with Stubber(service.logs) as stub:
        for page, token in (([], "a"), (events[:1], "b"), ([], "c"), (events[1:], None)):
            stub.add_response("filter_log_events",
                              {"events": page, **({"nextToken": token} if token else {})})
        reports = service.read_metrics([name])
        stub.assert_no_pending_responses()
    assert [r["loss"] for r in reports[name]] == [0.5]
    assert service.metrics_complete(name)
