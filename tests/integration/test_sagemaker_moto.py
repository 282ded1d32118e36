"""The SageMaker adapter against moto (in-process, no network) and botocore's Stubber.

moto 5.2 creates training jobs `Completed` at once and has no lifecycle, so the tests set a
job's status (and the fields DescribeTrainingJob would then show) on moto's job object, the
way SageMaker would. It lacks StopTrainingJob and UpdateTrainingJob: those exact requests
are checked with Stubber, as are the error mappings.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.core.utils import utcnow
from moto.sagemaker.models import sagemaker_backends

from stbench.backends.jobs import sagemaker as sagemaker_module
from stbench.backends.jobs.job_requests import JobTemplate, trial_request
from stbench.backends.jobs.job_service import (
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    STOPPING,
    CapacityError,
    Throttled,
)
from stbench.backends.jobs.sagemaker import SageMakerJobService
from stbench.model.naming import MAX_JOB_NAME, experiment_base, job_name

REGION = "us-east-1"
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
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
    """Jobs created through the adapter, then running as far as moto is concerned."""
    names = []
    for trial_id in range(count):
        name = job_name(BASE, trial_id)
        request = trial_request(TEMPLATE, name, trial_id, CONFIG)
        if not keep_alive:
            request["ResourceConfig"].pop("KeepAlivePeriodInSeconds")
        service.create_training_job(request)
        set_job(name, IN_PROGRESS)
        names.append(name)
    return names


def set_job(name: str, status: str, **fields: Any) -> None:
    """What SageMaker would do to the job: new status, newer LastModifiedTime, more fields."""
    job = sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION].training_jobs[name]
    job.training_job_status = status
    job.last_modified_time = utcnow()
    for key, value in fields.items():
        setattr(job, key, value)


def put_logs(logs: Any, name: str, messages: list[str], stream_epoch: int = 1700000000,
             written_ms: int | None = None) -> None:
    """Log lines the way SageMaker ships a container's stdout: one stream per host. Lines
    keep the time they were written (`written_ms`, default now), however late they arrive."""
    try:
        logs.create_log_group(logGroupName=LOG_GROUP)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    stream = f"{name}/algo-1-{stream_epoch}"
    try:
        logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    now = int(time.time() * 1000) if written_ms is None else written_ms
    logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream, logEvents=[
        {"timestamp": now + i, "message": message} for i, message in enumerate(messages)
    ])


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


class CallCounter:
    """API calls the adapter's clients make (one per call, pages included, retries not)."""

    def __init__(self, service: SageMakerJobService):
        self.calls: Counter[str] = Counter()
        for client in (service.sm, service.logs):
            client.meta.events.register("before-call", self._count)

    def _count(self, model: Any, **kwargs: Any) -> None:
        self.calls[model.name] += 1

    def take(self) -> Counter[str]:
        calls, self.calls = self.calls, Counter()
        return calls


def poll(service: SageMakerJobService, names: list[str]) -> tuple[dict, dict]:
    """What the job backend does once per loop: status, then metrics."""
    return service.describe_training_jobs(names), service.read_metrics(names)


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
        stub.add_client_error("list_training_jobs", "ThrottlingException", "Rate exceeded")
        stub.add_client_error("create_training_job", "ValidationException", "bad request")
        with pytest.raises(CapacityError, match="'ml.c5.xlarge for training job usage'"):
            service.create_training_job(request)
        with pytest.raises(CapacityError, match="'ml.c5.xlarge for training warm pool usage'"):
            service.create_training_job(request)
        with pytest.raises(Throttled, match="CreateTrainingJob"):
            service.create_training_job(request)
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


# --- status -------------------------------------------------------------------------------


def test_status_and_terminal_descriptions(session: boto3.session.Session) -> None:
    service = service_for(session)
    names = create_jobs(service, 3)
    counter = CallCounter(service)
    status = service.describe_training_jobs(names)
    assert {n: d["TrainingJobStatus"] for n, d in status.items()} == dict.fromkeys(
        names, IN_PROGRESS)

    set_job(names[0], COMPLETED, billable_time_in_seconds=42,
            warm_pool_status={"Status": "Available",
                              "ResourceRetainedBillableTimeInSeconds": 5})
    set_job(names[1], FAILED, failure_reason="exit code 1: boom", billable_time_in_seconds=7)
    counter.take()
    status = service.describe_training_jobs(names)
    assert counter.take() == {"ListTrainingJobs": 1, "DescribeTrainingJob": 2}
    done, failed, running = (status[n] for n in names)
    assert done["TrainingJobStatus"] == COMPLETED and done["BillableTimeInSeconds"] == 42
    assert done["WarmPoolStatus"] == {
        "Status": "Available", "ResourceRetainedBillableTimeInSeconds": 5}
    assert isinstance(done["TrainingEndTime"], float) and isinstance(done["CreationTime"], float)
    assert failed["TrainingJobStatus"] == FAILED
    assert failed["FailureReason"] == "exit code 1: boom"
    assert running["TrainingJobStatus"] == IN_PROGRESS

    service.describe_training_jobs(names)  # ended jobs are described once, not per poll
    assert counter.take() == {"ListTrainingJobs": 1}


def test_stop_reports_stopping_until_sagemaker_says_more(session: boto3.session.Session) -> None:
    service = service_for(session)
    [name] = create_jobs(service, 1)
    with Stubber(service.sm) as stub:
        stub.add_response("stop_training_job", {}, {"TrainingJobName": name})
        service.stop_training_job(name)
    assert service.describe_training_jobs([name])[name]["TrainingJobStatus"] == STOPPING
    set_job(name, "Stopped")
    assert service.describe_training_jobs([name])[name]["TrainingJobStatus"] == "Stopped"


def test_pagination_despite_moto_paging_before_filtering(
        session: boto3.session.Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto pages before it filters: short and empty pages with a NextToken must be followed."""
    monkeypatch.setattr(sagemaker_module, "LIST_PAGE_SIZE", 2)
    other = SageMakerJobService(session, job_base="other-study", poll_seconds=0.0)
    for trial_id in range(3):
        other.create_training_job(trial_request(TEMPLATE, f"other-study-t{trial_id}", trial_id,
                                                CONFIG))
    service = service_for(session)
    names = create_jobs(service, 5)
    set_job(names[4], COMPLETED)
    status = service.describe_training_jobs(names)
    assert [status[n]["TrainingJobStatus"] for n in names] == [IN_PROGRESS] * 4 + [COMPLETED]
    assert service.describe_training_jobs(["other-study-t0"]) == {}  # another prefix's job


def test_jobs_of_an_earlier_process_are_described_once(session: boto3.session.Session) -> None:
    """A resumed experiment asks about jobs this service did not create."""
    earlier = create_jobs(service_for(session), 2)
    an_hour_ago = utcnow() - timedelta(hours=1)  # older than any listing reaches back
    set_job(earlier[0], IN_PROGRESS, last_modified_time=an_hour_ago)
    set_job(earlier[1], COMPLETED, last_modified_time=an_hour_ago, billable_time_in_seconds=9)
    service = service_for(session)
    counter = CallCounter(service)
    status = service.describe_training_jobs(earlier)
    assert [status[n]["TrainingJobStatus"] for n in earlier] == [IN_PROGRESS, COMPLETED]
    assert counter.take() == {"ListTrainingJobs": 1, "DescribeTrainingJob": 2}
    service.describe_training_jobs(earlier)
    assert counter.take() == {"ListTrainingJobs": 1}
    set_job(earlier[0], COMPLETED, billable_time_in_seconds=9)
    assert service.describe_training_jobs(earlier)[earlier[0]]["TrainingJobStatus"] == COMPLETED
    assert counter.take() == {"ListTrainingJobs": 1, "DescribeTrainingJob": 1}


def test_reuse_link_from_the_pool_job(session: boto3.session.Session) -> None:
    """ListTrainingJobs summaries carry WarmPoolStatus on SageMaker (not in moto): stubbed."""
    service = service_for(session)
    first, second = create_jobs(service, 2)
    pool = {"Status": "Reused", "ResourceRetainedBillableTimeInSeconds": 12,
            "ReusedByJob": second}
    with Stubber(service.sm) as stub:
        stub.add_response("list_training_jobs", {"TrainingJobSummaries": [{
            "TrainingJobName": first, "TrainingJobArn": f"arn:{first}",
            "CreationTime": 1.0, "LastModifiedTime": time.time(),
            "TrainingJobStatus": COMPLETED, "WarmPoolStatus": pool,
        }]})
        stub.add_response("describe_training_job", described(
            first, COMPLETED, BillableTimeInSeconds=30, WarmPoolStatus=pool),
            {"TrainingJobName": first})
        status = service.describe_training_jobs([first, second])
    assert status[first]["WarmPoolStatus"]["ReusedByJob"] == second
    assert status[second]["WarmPoolReusedFrom"] == first
    with Stubber(service.sm) as stub:  # its pool was reused: releasing it needs no call
        service.release_warm_pool(first)
        assert service.warm_pool_status([first]) == {first: pool}
        stub.assert_no_pending_responses()


# --- metrics ------------------------------------------------------------------------------


def test_metrics_per_job_once_across_polls(session: boto3.session.Session) -> None:
    service = service_for(session)
    a, b, c = create_jobs(service, 3)
    logs = session.client("logs")
    put_logs(logs, a, ["starting", report(loss=1.0, epoch=1), report(loss=0.5, epoch=2)])
    put_logs(logs, c, [report(loss=3.0, epoch=1, st_trainer_timestamp=123.0)])
    put_logs(logs, "other-study-t000001-r00", [report(loss=9.0)])  # another experiment
    put_logs(logs, b, ["[tune-metric]: not json", "just a line"])

    first = service.read_metrics([a, b])
    assert list(first) == [a]
    assert [r["loss"] for r in first[a]] == [1.0, 0.5]
    assert all(isinstance(r["st_trainer_timestamp"], float) for r in first[a])
    assert abs(first[a][0]["st_trainer_timestamp"] - time.time()) < 60

    put_logs(logs, a, [report(loss=0.25, epoch=3)])
    second = service.read_metrics([a, b, c])
    assert [r["loss"] for r in second[a]] == [0.25]  # earlier events come back, not twice
    assert second[c] == [{"loss": 3.0, "epoch": 1, "st_trainer_timestamp": 123.0}]
    assert b not in second
    assert service.read_metrics([a, b, c]) == {}


@pytest.mark.parametrize("n_jobs", [4, 64])
def test_calls_per_poll_do_not_grow_with_jobs(session: boto3.session.Session,
                                              n_jobs: int) -> None:
    service = service_for(session)
    names = create_jobs(service, n_jobs)
    logs = session.client("logs")
    for name in names:
        put_logs(logs, name, [report(loss=1.0, epoch=1)])
    counter = CallCounter(service)

    status, metrics = poll(service, names)
    assert len(status) == n_jobs and len(metrics) == n_jobs
    assert counter.take() == {"ListTrainingJobs": 1, "FilterLogEvents": 1}

    set_job(names[0], COMPLETED, billable_time_in_seconds=9)  # a job ends: one describe, once
    for name in names:
        put_logs(logs, name, [report(loss=0.5, epoch=2)])
    status, metrics = poll(service, names)
    assert status[names[0]]["TrainingJobStatus"] == COMPLETED
    assert sum(len(reports) for reports in metrics.values()) == n_jobs
    calls = counter.take()
    assert calls == {"ListTrainingJobs": 1, "DescribeTrainingJob": 1, "FilterLogEvents": 1}
    assert sum(calls.values()) <= 3

    poll(service, names)
    assert sum(counter.take().values()) <= 2


def test_refresh_at_most_once_per_poll_interval(session: boto3.session.Session) -> None:
    service = SageMakerJobService(session, job_base=BASE, poll_seconds=0.3)
    names = create_jobs(service, 2)
    counter = CallCounter(service)
    for _ in range(5):
        poll(service, names)
    assert counter.take() == {"ListTrainingJobs": 1, "FilterLogEvents": 1}
    started = time.monotonic()
    service.wait_for_activity(10.0)
    assert 0.1 < time.monotonic() - started < 1.0
    poll(service, names)
    assert counter.take() == {"ListTrainingJobs": 1, "FilterLogEvents": 1}
