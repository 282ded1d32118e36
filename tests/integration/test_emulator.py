"""The local SageMaker endpoint (`stbench.emulator`), seen only through boto3 as a client
on AWS would see it: jobs of the trainer image train and log to CloudWatch, validation,
listing, warm pools, stops, quotas and throttling behave as the AWS docs describe.

One endpoint serves the module; short knobs keep it quick. Jobs that only need a shell run
`stbench-runtime` (the trainer's base image) with ContainerEntrypoint.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from stbench.backends.jobs.job_requests import JobTemplate, trial_request
from stbench.emulator import Emulator, EmulatorConfig

pytestmark = pytest.mark.docker

RUNTIME = "stbench-runtime:latest"
BUCKET = "emulator-tests"
ROLE = "arn:aws:iam::000000000000:role/stbench-local"
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
WARM = "ml.m5.large"  # has a warm-pool quota here
COLD = "ml.m5.xlarge"  # keeps the default warm-pool quota, 0
SCARCE = "ml.m5.2xlarge"  # one instance of training quota
CONFIG = EmulatorConfig(
    cold_start_seconds=0.6, warm_start_seconds=0.05, log_delay_seconds=1.0,
    stop_grace_seconds=2.0, checkpoint_sync_seconds=0.3, seed=11,
    quotas={f"{WARM} for training warm pool usage": 2,
            f"{SCARCE} for training job usage": 1})
TRIAL = {"x": 0.5, "log_lr": -2.5, "width": 16, "epochs": 3, "epoch_duration": 0.05}
ENDED = ("Completed", "Failed", "Stopped")
BIN = Path(os.environ.get("VIRTUAL_ENV", ".venv")) / "bin"


def clients(url: str, *services: str, attempts: int = 3) -> list[Any]:
    config = Config(retries={"mode": "standard", "total_max_attempts": attempts})
    return [boto3.client(service, endpoint_url=url, region_name="us-east-1",
                         aws_access_key_id="testing", aws_secret_access_key="testing",
                         config=config) for service in services]


@pytest.fixture(scope="module")
def emulator(images: dict[str, str]) -> Iterator[Emulator]:
    with Emulator(CONFIG) as running:
        clients(running.endpoint_url, "s3")[0].create_bucket(Bucket=BUCKET)
        yield running


@pytest.fixture(scope="module")
def endpoint(emulator: Emulator) -> str:
    return emulator.endpoint_url


@pytest.fixture
def sm(endpoint: str) -> Any:
    return clients(endpoint, "sagemaker")[0]


def unique(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:6]}"


def trainer_job(name: str, images: dict[str, str], instance_type: str = WARM,
                keep_alive: int = 0) -> dict[str, Any]:
    """The CreateTrainingJob request stbench sends for a trial of synthetic_curves."""
    template = JobTemplate(image=images["trainer"], benchmark="synthetic_curves",
                           instance_type=instance_type,
                           checkpoint_root=f"s3://{BUCKET}/checkpoints/{name}",
                           output_root=f"s3://{BUCKET}/output", keep_alive_seconds=keep_alive,
                           max_runtime_seconds=600)
    return trial_request(template, name, 0, TRIAL)


def shell_job(name: str, script: str, instance_type: str = COLD, keep_alive: int = 0,
              checkpoint: str | None = None) -> dict[str, Any]:
    resources: dict[str, Any] = {"InstanceType": instance_type, "InstanceCount": 1,
                                 "VolumeSizeInGB": 30}
    if keep_alive:
        resources["KeepAlivePeriodInSeconds"] = keep_alive
    request = {
        "TrainingJobName": name, "RoleArn": ROLE, "ResourceConfig": resources,
        "AlgorithmSpecification": {"TrainingImage": RUNTIME, "TrainingInputMode": "File",
                                   "ContainerEntrypoint": ["sh", "-c", script]},
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/output"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }
    if checkpoint:
        request["CheckpointConfig"] = {"S3Uri": checkpoint}
    return request


def wait_until(sm: Any, name: str, done: Callable[[dict[str, Any]], bool],
               timeout: float = 60, watch: Callable[[dict[str, Any]], None] | None = None
               ) -> dict[str, Any]:
    deadline = time.time() + timeout
    while True:
        job = sm.describe_training_job(TrainingJobName=name)
        if watch:
            watch(job)
        if done(job):
            return job
        assert time.time() < deadline, f"{name} still {job['TrainingJobStatus']}"
        time.sleep(0.1)


def ended(job: dict[str, Any]) -> bool:
    return job["TrainingJobStatus"] in ENDED


def log_lines(logs: Any, name: str, pattern: str = "") -> list[dict[str, Any]]:
    try:
        pages = logs.get_paginator("filter_log_events").paginate(
            logGroupName=LOG_GROUP, logStreamNamePrefix=name, filterPattern=pattern)
        events = [event for page in pages for event in page["events"]]
    except ClientError as err:  # no job has logged yet
        assert err.response["Error"]["Code"] == "ResourceNotFoundException"
        return []
    return [e for e in events if e["logStreamName"].startswith(f"{name}/")]


def wait_for_lines(logs: Any, name: str, count: int, pattern: str = "",
                   timeout: float = 20) -> list[dict[str, Any]]:
    deadline = time.time() + timeout
    while len(lines := log_lines(logs, name, pattern)) < count:
        assert time.time() < deadline, f"{len(lines)} of {count} log lines of {name}"
        time.sleep(0.1)
    return lines


def error_of(call: Callable[..., Any], **request: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**request)
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


def test_a_trial_job_trains_logs_its_metrics_late_and_is_billed_once_ended(
        endpoint: str, images: dict[str, str]) -> None:
    sm, logs, s3 = clients(endpoint, "sagemaker", "logs", "s3")
    name = unique("trial")
    sm.create_training_job(**trainer_job(name, images))
    first_seen: dict[str, float] = {}

    def watch(job: dict[str, Any]) -> None:
        if not ended(job):
            assert "BillableTimeInSeconds" not in job
        for event in log_lines(logs, name, '"[tune-metric]"'):
            first_seen.setdefault(event["eventId"], time.time() - event["timestamp"] / 1000)

    job = wait_until(sm, name, ended, watch=watch)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == [
        "Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert job["CreationTime"] < job["TrainingStartTime"] <= job["TrainingEndTime"]
    billed = (job["TrainingEndTime"] - job["TrainingStartTime"]).total_seconds()
    assert job["BillableTimeInSeconds"] >= billed >= 0

    metrics = wait_for_lines(logs, name, 3, '"[tune-metric]"')
    watch(job)
    for event in metrics:
        assert re.fullmatch(rf"{name}/algo-1-\d+", event["logStreamName"])
    assert [m["message"].count('"epoch": ') for m in metrics] == [1, 1, 1]
    # each line kept the time it was written and was visible only a delay later
    assert min(first_seen.values()) >= CONFIG.log_delay_seconds - 0.2

    model = s3.get_object(Bucket=BUCKET, Key=f"output/{name}/output/model.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(model["Body"].read())) as archive:
        archive.getmembers()  # a valid archive of /opt/ml/model (empty for this benchmark)


def test_create_training_job_validates_as_sagemaker_does(
        sm: Any, images: dict[str, str]) -> None:
    name = unique("valid")
    good = trainer_job(name, images)
    cases = {
        "enum value set": {**good, "ResourceConfig": {**good["ResourceConfig"],
                                                      "InstanceType": "ml.c5.large"}},
        "regular expression pattern": {**good, "TrainingJobName": "bad_name"},
        "length less than or equal to 100": {
            **good, "HyperParameters": {f"h{i}": "1" for i in range(101)}},
        "length less than or equal to 2500": {
            **good, "HyperParameters": {**good["HyperParameters"], "x": "1" * 2501}},
        "Cannot find the requested image": {
            **good, "AlgorithmSpecification": {**good["AlgorithmSpecification"],
                                               "TrainingImage": "stbench-none:missing"}},
    }
    for expected, request in cases.items():
        code, message = error_of(sm.create_training_job, **request)
        assert code == "ValidationException" and expected in message, message
    code, message = error_of(sm.describe_training_job, TrainingJobName=name)
    assert code == "ValidationException" and "not found" in message

    sm.create_training_job(**shell_job(name, "true"))
    code, message = error_of(sm.create_training_job, **shell_job(name, "true"))
    assert code == "ResourceInUse" and "must be unique" in message  # AWS's code for it
    wait_until(sm, name, ended)


def test_listing_applies_max_results_before_its_filters(sm: Any) -> None:
    stem = unique("list")
    since = time.time() - 1  # botocore may send whole seconds
    names = [f"{stem}-{letter}" for letter in "abc"]
    for name in names:
        sm.create_training_job(**shell_job(name, "true"))
        time.sleep(0.01)
    newest_first = {"CreationTimeAfter": since, "SortOrder": "Descending", "MaxResults": 1}
    page = sm.list_training_jobs(NameContains=names[0], **newest_first)
    assert page["TrainingJobSummaries"] == [] and page["NextToken"]  # c was read, then dropped

    pages = list(sm.get_paginator("list_training_jobs").paginate(NameContains=names[0],
                                                                 **newest_first))
    found = [s["TrainingJobName"] for p in pages for s in p["TrainingJobSummaries"]]
    assert found == [names[0]] and len(pages) >= 3  # c, b, a, and any older job of that second
    everything = sm.list_training_jobs(NameContains=stem, CreationTimeAfter=since)
    assert [s["TrainingJobName"] for s in everything["TrainingJobSummaries"]] == names
    for name in names:
        wait_until(sm, name, ended)


def test_a_matching_job_reuses_the_warm_pool_and_finds_its_cache(
        endpoint: str, images: dict[str, str]) -> None:
    sm, logs = clients(endpoint, "sagemaker", "logs")
    first, second = unique("pool-a"), unique("pool-b")
    sm.create_training_job(**trainer_job(first, images, keep_alive=60))
    job = wait_until(sm, first, ended)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["WarmPoolStatus"]["Status"] == "Available"

    sm.create_training_job(**trainer_job(second, images, keep_alive=60))
    pool = sm.describe_training_job(TrainingJobName=first)["WarmPoolStatus"]
    assert pool["Status"] == "Reused" and pool["ReusedByJob"] == second
    assert pool["ResourceRetainedBillableTimeInSeconds"] >= 0
    assert sm.describe_training_job(TrainingJobName=second)["WarmPoolStatus"] == {
        "Status": "InUse"}
    job = wait_until(sm, second, ended)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    started = (job["TrainingStartTime"] - job["CreationTime"]).total_seconds()
    assert started < CONFIG.cold_start_seconds  # the warm start
    reports = wait_for_lines(logs, second, 3, '"[tune-metric]"')
    assert all('"cache_hit": 1' in event["message"] for event in reports)  # the cache survived

    listed = sm.list_training_jobs(NameContains=second, WarmPoolStatusEquals="Available",
                                   MaxResults=100)["TrainingJobSummaries"]
    assert [s["TrainingJobName"] for s in listed] == [second]
    sm.update_training_job(TrainingJobName=second, ResourceConfig={"KeepAlivePeriodInSeconds": 0})
    assert sm.describe_training_job(TrainingJobName=second)["WarmPoolStatus"][
        "Status"] == "Terminated"


def test_a_job_name_is_unique_within_its_region_only(endpoint: str) -> None:
    """AWS keeps job names unique per account and region: two regions run two jobs of one
    name at once, each in its own container with its own log."""
    name = unique("twin")
    regions = ("us-east-1", "eu-west-1")
    for region in regions:
        sm = boto3.client("sagemaker", endpoint_url=endpoint, region_name=region,
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        sm.create_training_job(**shell_job(name, 'echo "in $AWS_REGION"; sleep 2'))
    for region in regions:
        sm, logs = (boto3.client(service, endpoint_url=endpoint, region_name=region,
                                 aws_access_key_id="testing", aws_secret_access_key="testing")
                    for service in ("sagemaker", "logs"))
        job = wait_until(sm, name, ended)
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        assert [e["message"] for e in wait_for_lines(logs, name, 1)] == [f"in {region}"]


def test_no_warm_pool_is_kept_at_the_default_quota_of_zero(sm: Any) -> None:
    first, second = unique("nopool-a"), unique("nopool-b")
    sm.create_training_job(**shell_job(first, "true", keep_alive=60))
    job = wait_until(sm, first, ended)
    assert job["TrainingJobStatus"] == "Completed" and "WarmPoolStatus" not in job
    sm.create_training_job(**shell_job(second, "true", keep_alive=60))
    assert "WarmPoolStatus" not in sm.describe_training_job(TrainingJobName=second)
    code, message = error_of(sm.update_training_job, TrainingJobName=first,
                             ResourceConfig={"KeepAlivePeriodInSeconds": 0})
    assert code == "ValidationException" and "warm pool" in message
    wait_until(sm, second, ended)


def test_stop_sends_sigterm_then_sigkill_and_leaves_no_container(
        endpoint: str, docker_client: Any) -> None:
    sm, logs = clients(endpoint, "sagemaker", "logs")
    polite, stubborn = unique("stop-polite"), unique("stop-stubborn")
    loop = "echo started; while true; do sleep 0.1; done"
    sm.create_training_job(**shell_job(polite, f'trap "echo got TERM; exit 0" TERM; {loop}'))
    sm.create_training_job(**shell_job(stubborn, f'trap "" TERM; {loop}'))
    for name in (polite, stubborn):
        wait_for_lines(logs, name, 1)  # running, output delivered
        sm.stop_training_job(TrainingJobName=name)
        assert sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "Stopping"
    asked = time.time()
    for name in (polite, stubborn):
        job = wait_until(sm, name, ended)
        assert job["TrainingJobStatus"] == "Stopped" and job["SecondaryStatus"] == "Stopped"
        assert "BillableTimeInSeconds" in job
        assert not docker_client.containers.list(all=True, filters={"name": name})
        code, message = error_of(sm.stop_training_job, TrainingJobName=name)
        assert code == "ValidationException" and "status Stopped" in message
    assert time.time() - asked >= CONFIG.stop_grace_seconds  # the stubborn one was killed
    assert any("got TERM" in e["message"] for e in wait_for_lines(logs, polite, 2))


def test_retry_strategy_restarts_a_job_whose_instance_failed_from_its_checkpoints(
        emulator: Emulator) -> None:
    """Issue 14 R2: an instance failure (the test hook) is an InternalServerError; with
    RetryStrategy the job starts again (SecondaryStatus Starting) with its checkpoints
    restored, without one it fails."""
    sm, logs, s3 = clients(emulator.endpoint_url, "sagemaker", "logs", "s3")
    retried, unretried = unique("retried"), unique("unretried")
    prefix = f"checkpoints/{unique('retry')}"
    loop = "while true; do sleep 0.1; done"
    sm.create_training_job(**shell_job(retried, (
        "if [ -f /opt/ml/checkpoints/seen ]; then echo restored; exit 0; fi; "
        f"echo first; touch /opt/ml/checkpoints/seen; {loop}"), checkpoint=f"s3://{BUCKET}/{prefix}/"),
        RetryStrategy={"MaximumRetryAttempts": 1})
    sm.create_training_job(**shell_job(unretried, f"echo running; {loop}"))
    wait_until(sm, retried, lambda job: s3.list_objects_v2(
        Bucket=BUCKET, Prefix=prefix).get("KeyCount", 0) > 0, timeout=30)
    wait_for_lines(logs, unretried, 1)
    emulator.fail_instance(retried)
    emulator.fail_instance(unretried)

    job = wait_until(sm, retried, ended)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    steps = [t["Status"] for t in job["SecondaryStatusTransitions"]]
    assert steps.count("Starting") == 2 and steps.index("Starting", 1) > steps.index("Training")
    assert [e["message"] for e in wait_for_lines(logs, retried, 2)] == ["first", "restored"]
    job = wait_until(sm, unretried, ended)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("InternalServerError")


def test_the_training_quota_gives_resource_limit_exceeded(sm: Any) -> None:
    holder, extra = unique("quota-a"), unique("quota-b")
    sm.create_training_job(**shell_job(holder, "sleep 30", instance_type=SCARCE))
    code, message = error_of(sm.create_training_job,
                             **shell_job(extra, "true", instance_type=SCARCE))
    assert code == "ResourceLimitExceeded"
    assert f"'{SCARCE} for training job usage' is 1 Instances" in message
    sm.stop_training_job(TrainingJobName=holder)
    wait_until(sm, holder, ended)
    sm.create_training_job(**shell_job(extra, "true", instance_type=SCARCE))  # freed
    wait_until(sm, extra, ended)


def test_failure_reason_and_checkpoints_synced_while_running_and_restored(
        endpoint: str) -> None:
    sm, logs, s3 = clients(endpoint, "sagemaker", "logs", "s3")
    failing = unique("fails")
    sm.create_training_job(**shell_job(
        failing, "echo 'disk on fire' > /opt/ml/output/failure; exit 3"))
    prefix = f"checkpoints/{unique('state')}"
    uri = f"s3://{BUCKET}/{prefix}/"
    writer, reader = unique("ckpt-write"), unique("ckpt-read")
    sm.create_training_job(**shell_job(
        writer, "echo hello > /opt/ml/checkpoints/state.txt; sleep 3", checkpoint=uri))
    wait_until(sm, writer, lambda job: s3.list_objects_v2(
        Bucket=BUCKET, Prefix=prefix).get("KeyCount", 0) > 0, timeout=20)
    assert sm.describe_training_job(TrainingJobName=writer)["TrainingJobStatus"] == "InProgress"

    job = wait_until(sm, failing, ended)
    assert job["TrainingJobStatus"] == "Failed" and job["FailureReason"] == "disk on fire"
    wait_until(sm, writer, ended)
    sm.create_training_job(**shell_job(reader, "cat /opt/ml/checkpoints/state.txt",
                                       checkpoint=uri))
    assert wait_until(sm, reader, ended)["TrainingJobStatus"] == "Completed"
    assert [e["message"] for e in wait_for_lines(logs, reader, 1)] == ["hello"]


def test_input_channels_are_downloaded_before_the_container_starts(endpoint: str) -> None:
    """File mode: each InputDataConfig channel's objects in /opt/ml/input/data/<channel> (a
    key prefix as its folder, one object as itself) and inputdataconfig.json describing them;
    a channel with no objects fails the job in Downloading, as SageMaker does."""
    sm, logs, s3 = clients(endpoint, "sagemaker", "logs", "s3")
    stem = unique("inputs")
    for key in (f"{stem}/train/a.csv", f"{stem}/train/sub/b.csv", f"{stem}/x.tar.gz"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=key.encode())

    def channel(name: str, uri: str) -> dict[str, Any]:
        return {"ChannelName": name, "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}}}

    reader, missing = unique("channels"), unique("no-data")
    request = shell_job(reader, "cd /opt/ml/input && find data -type f | sort && cat "
                                "data/train/sub/b.csv && echo && cat config/inputdataconfig.json")
    request["InputDataConfig"] = [channel("train", f"s3://{BUCKET}/{stem}/train/"),
                                  channel("blob", f"s3://{BUCKET}/{stem}/x.tar.gz")]
    sm.create_training_job(**request)
    failing = shell_job(missing, "true")
    failing["InputDataConfig"] = [channel("train", f"s3://{BUCKET}/{stem}/nothing-here/")]
    sm.create_training_job(**failing)

    assert wait_until(sm, reader, ended)["TrainingJobStatus"] == "Completed"
    lines = [e["message"] for e in wait_for_lines(logs, reader, 5)]
    assert lines[:4] == ["data/blob/x.tar.gz", "data/train/a.csv", "data/train/sub/b.csv",
                         f"{stem}/train/sub/b.csv"]
    config = json.loads(lines[4])
    assert config == {name: {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated",
                             "RecordWrapperType": "None"} for name in ("train", "blob")}
    job = wait_until(sm, missing, ended)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("ClientError: No S3 objects found under S3 URL")


def test_a_last_line_without_a_newline_reaches_the_log(endpoint: str) -> None:
    """A container that prints one unterminated line and exits at once: the engine's followed
    log stream could close before that line was written, and it was lost (about every other
    job)."""
    sm, logs = clients(endpoint, "sagemaker", "logs")
    names = [unique("unterminated") for _ in range(5)]
    for name in names:
        sm.create_training_job(**shell_job(name, f"printf 'last words of {name}'"))
    for name in names:
        assert wait_until(sm, name, ended)["TrainingJobStatus"] == "Completed"
        assert [e["message"] for e in wait_for_lines(logs, name, 1)] == [f"last words of {name}"]


def test_service_quotas_lists_the_sagemaker_quotas(endpoint: str) -> None:
    quotas = clients(endpoint, "service-quotas")[0]
    pages = quotas.get_paginator("list_service_quotas").paginate(ServiceCode="sagemaker")
    listed = {q["QuotaName"]: q for page in pages for q in page["Quotas"]}
    assert listed[f"{WARM} for training warm pool usage"]["Value"] == 2
    assert listed[f"{COLD} for training warm pool usage"]["Value"] == 0  # AWS's default
    assert listed[f"{COLD} for training job usage"]["Value"] > 0
    assert "ml.c5.large for training job usage" not in listed  # not a training type
    code = listed[f"{SCARCE} for training job usage"]["QuotaCode"]
    quota = quotas.get_service_quota(ServiceCode="sagemaker", QuotaCode=code)["Quota"]
    assert quota["Value"] == 1
    default = quotas.get_aws_default_service_quota(ServiceCode="sagemaker", QuotaCode=code)
    assert default["Quota"]["Value"] > 1


def test_throttling_knob_throttles_that_share_of_sagemaker_and_logs_calls(
        docker_client: Any) -> None:
    with Emulator(EmulatorConfig(throttle_fraction=0.5, seed=3)) as emulator:
        sm, logs, s3 = clients(emulator.endpoint_url, "sagemaker", "logs", "s3", attempts=1)
        outcomes = []
        for call in [sm.list_training_jobs, logs.describe_log_groups] * 20:
            try:
                call()
                outcomes.append("ok")
            except ClientError as err:
                outcomes.append(err.response["Error"]["Code"])
        assert set(outcomes) == {"ok", "ThrottlingException"}
        assert 8 <= outcomes.count("ThrottlingException") <= 32
        for _ in range(10):
            s3.list_buckets()  # S3 is never throttled


def test_cli_deploys_the_stack_prints_its_user_and_stops_on_sigterm(docker_client: Any) -> None:
    executable = BIN / "stbench" if (BIN / "stbench").exists() else Path("stbench")
    process = subprocess.Popen([str(executable), "emulator", "--port", "0", "--quota",
                                f"{WARM} for training warm pool usage=4"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line, stack = process.stdout.readline(), process.stdout.readline()
        exports = dict(item.split("=", 1) for item in line.split()[1:])
        outputs = dict(item.split("=", 1) for item in stack.split()[1:])
        assert line.startswith("export ") and stack.startswith("export ROLE=")
        # the launching user of stbench's CloudFormation stack, IAM enforced for it
        user = boto3.session.Session(
            aws_access_key_id=exports["AWS_ACCESS_KEY_ID"], region_name="us-east-1",
            aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"])
        quotas, sts, iam = (user.client(name, endpoint_url=exports["AWS_ENDPOINT_URL"])
                            for name in ("service-quotas", "sts", "iam"))
        assert sts.get_caller_identity()["Arn"].endswith(":user/stbench-user")
        listed = quotas.list_service_quotas(ServiceCode="sagemaker", MaxResults=100)
        assert listed["Quotas"] and listed["NextToken"]
        assert iam.get_role(RoleName="stbench-sagemaker")["Role"]["Arn"] == outputs["ROLE"]
        assert outputs["S3_ROOT"].startswith("s3://stbench-")
        with pytest.raises(ClientError, match="not authorized to perform: iam:CreateUser"):
            iam.create_user(UserName="intruder")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "stbench emulator stopped" in stderr


def test_closing_stops_running_jobs_and_removes_containers_and_pool_volumes(
        images: dict[str, str], docker_client: Any) -> None:
    config = EmulatorConfig(cold_start_seconds=0.1,
                            quotas={f"{COLD} for training warm pool usage": 1})
    with Emulator(config) as emulator:
        sm, logs = clients(emulator.endpoint_url, "sagemaker", "logs")
        pooled, running = unique("closing-pool"), unique("closing-run")
        sm.create_training_job(**shell_job(pooled, "true", keep_alive=600))
        assert wait_until(sm, pooled, ended)["WarmPoolStatus"]["Status"] == "Available"
        sm.create_training_job(**shell_job(running, "echo started; sleep 60",
                                           instance_type=WARM))
        wait_for_lines(logs, running, 1)
        label = {"label": f"stbench.emulator={emulator.id}"}
        assert docker_client.containers.list(filters=label)
        assert len(docker_client.volumes.list(filters=label)) == 2
    assert not docker_client.containers.list(all=True, filters=label)
    assert not docker_client.volumes.list(filters=label)
