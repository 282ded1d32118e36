"""`stbench cleanup` against moto (in-process) and botocore's Stubber, plus docs/iam.md.

moto serves ListTrainingJobs and DescribeTrainingJob (its jobs are `Completed` at once, so
the tests set statuses and warm pools on moto's job objects) but has no StopTrainingJob or
UpdateTrainingJob: those calls are answered by a `before-call` handler that records each
request, or by Stubber, which also checks that nothing else is called.
"""

from __future__ import annotations

import io
import json
import re
import signal
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import botocore.session
import pytest
from botocore import xform_name
from botocore.stub import Stubber
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.core.utils import utcnow
from moto.sagemaker.models import sagemaker_backends

from stbench.cli.cleanup import cmd_cleanup
from stbench.cli.main import guarded
from stbench.launch import cleanup as cleanup_module
from stbench.model.naming import (
    experiment_base,
    job_name,
    name_key,
    orchestrator_job_name,
    tag_matcher,
)

REGION = "us-east-1"
REPO = Path(__file__).resolve().parents[2]
ROLE = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/stbench-sagemaker"
STUDY = experiment_base("study", "synthetic_curves", "ASHA", 0)
STUDY_B = experiment_base("study", "mlp_digits", "RS", 1)
OTHER = experiment_base("study-2", "synthetic_curves", "ASHA", 0)  # its names start `study-`
AVAILABLE = {"Status": "Available", "ResourceRetainedBillableTimeInSeconds": 3}


@pytest.fixture(autouse=True)
def quiet_terminal(isolated_aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """No real AWS; SIGTERM handling stays pytest's."""
    monkeypatch.setattr(signal, "signal", lambda *args: None)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal unless a test says so


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.session.Session]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.session.Session(region_name=REGION)


class Recorder:
    """The cleanup's client is moto's, with Stop/UpdateTrainingJob answered here."""

    def __init__(self, session: boto3.session.Session, monkeypatch: pytest.MonkeyPatch):
        self.client = cleanup_module.sagemaker_client(session)
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.client.meta.events.register("before-parameter-build.sagemaker", self._record)
        for operation in ("StopTrainingJob", "UpdateTrainingJob"):
            self.client.meta.events.register(f"before-call.sagemaker.{operation}", self._answer)
        monkeypatch.setattr(cleanup_module, "sagemaker_client", lambda _: self.client)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.requests.append((model.name, dict(params)))

    def _answer(self, model: Any, **_: Any) -> tuple[Any, dict[str, Any]]:
        return SimpleNamespace(status_code=200, headers={}), {
            "ResponseMetadata": {"HTTPStatusCode": 200, "HTTPHeaders": {}}}

    def calls(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params in self.requests if name == operation]


def create_job(session: boto3.session.Session, name: str, status: str, **fields: Any) -> None:
    """A job as stbench creates it, then in the state SageMaker would report."""
    session.client("sagemaker").create_training_job(
        TrainingJobName=name, RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": "stbench-trainer", "TrainingInputMode": "File"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30,
                        "KeepAlivePeriodInSeconds": 600},
        OutputDataConfig={"S3OutputPath": "s3://bucket/out/"},
        StoppingCondition={"MaxRuntimeInSeconds": 600})
    job = sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION].training_jobs[name]
    job.training_job_status = status
    job.last_modified_time = utcnow()
    for key, value in fields.items():
        setattr(job, key, value)


def cleanup(*argv: str) -> int:
    return guarded(lambda: cmd_cleanup(["--region", REGION, *argv]))


def test_cleanup_touches_only_its_own_study(session: boto3.session.Session,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture) -> None:
    ours_running = [job_name(STUDY, 1), orchestrator_job_name(STUDY), job_name(STUDY_B, 0, 1)]
    for name in ours_running:
        create_job(session, name, "InProgress")
    create_job(session, job_name(STUDY, 0), "Completed", warm_pool_status=AVAILABLE)
    create_job(session, job_name(STUDY_B, 2), "Stopped", warm_pool_status=AVAILABLE)
    create_job(session, job_name(STUDY, 2), "Completed",
               warm_pool_status={"Status": "Reused", "ReusedByJob": job_name(STUDY, 1)})
    create_job(session, job_name(STUDY, 3), "Failed")
    seven_hours_ago = utcnow() - timedelta(hours=7)  # longer ago than any keep-alive
    create_job(session, job_name(STUDY, 4), "Completed", warm_pool_status=AVAILABLE,
               last_modified_time=seven_hours_ago)
    create_job(session, orchestrator_job_name(STUDY, 1), "Stopped")
    for name in (job_name(OTHER, 0), orchestrator_job_name(OTHER)):  # tag `study-2`
        create_job(session, name, "InProgress")
    create_job(session, job_name(OTHER, 1), "Completed", warm_pool_status=AVAILABLE)
    create_job(session, "study-notes", "InProgress")  # not an stbench name
    create_job(session, "unrelated-job", "InProgress")
    recorder = Recorder(session, monkeypatch)

    assert cleanup("--experiment_tag", "study", "--yes") == 0

    [listing] = recorder.calls("ListTrainingJobs")[:1]
    assert listing == {"NameContains": "study", "MaxResults": 100}
    stops = [p["TrainingJobName"] for p in recorder.calls("StopTrainingJob")]
    assert stops == [orchestrator_job_name(STUDY), job_name(STUDY_B, 0, 1), job_name(STUDY, 1)]
    updates = sorted(recorder.calls("UpdateTrainingJob"), key=lambda p: p["TrainingJobName"])
    assert updates == [{"TrainingJobName": n, "ResourceConfig": {"KeepAlivePeriodInSeconds": 0}}
                       for n in (job_name(STUDY_B, 2), job_name(STUDY, 0))]
    # moto's summaries lack WarmPoolStatus: ended trials of the last 6 h are described once
    described = {p["TrainingJobName"] for p in recorder.calls("DescribeTrainingJob")}
    assert described == {job_name(STUDY, n) for n in (0, 2, 3)} | {job_name(STUDY_B, 2)}
    out = capsys.readouterr().out.splitlines()
    assert f"stopped {orchestrator_job_name(STUDY)}" in out
    assert f"released the warm pool of {job_name(STUDY_B, 2)}" in out
    assert "3 stopped, 2 warm pools released" in out


def test_summaries_with_warm_pool_status_need_no_describes(
        session: boto3.session.Session, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    """SageMaker's summaries carry WarmPoolStatus; a job that ended or a pool that went
    between the listing and the call is no error."""
    sm = cleanup_module.sagemaker_client(session)
    monkeypatch.setattr(cleanup_module, "sagemaker_client", lambda _: sm)

    def summary(name: str, status: str, pool: str | None = None) -> dict[str, Any]:
        row = {"TrainingJobName": name, "TrainingJobArn": f"arn:{name}", "CreationTime": 1.0,
               "LastModifiedTime": utcnow(), "TrainingJobStatus": status}
        return {**row, "WarmPoolStatus": {"Status": pool}} if pool else row

    release = {"ResourceConfig": {"KeepAlivePeriodInSeconds": 0}}
    with Stubber(sm) as stub:  # any call not added here fails the test
        stub.add_response("list_training_jobs", {"TrainingJobSummaries": [
            summary(job_name(STUDY, 0), "Completed", "Available"),
            summary(job_name(STUDY, 1), "InProgress", "InUse"),
            summary(job_name(STUDY, 2), "InProgress"),
            summary(job_name(STUDY, 3), "Completed", "Available"),
            summary(job_name(STUDY, 4), "Completed"),
            summary(job_name(OTHER, 0), "InProgress"),
            summary(job_name(OTHER, 1), "Completed", "Available"),
        ], "NextToken": "page-2"}, {"NameContains": "study", "MaxResults": 100})
        stub.add_response("list_training_jobs", {"TrainingJobSummaries": [
            summary(orchestrator_job_name(STUDY), "InProgress")]},
            {"NameContains": "study", "MaxResults": 100, "NextToken": "page-2"})
        for name in (orchestrator_job_name(STUDY), job_name(STUDY, 1)):
            stub.add_response("stop_training_job", {}, {"TrainingJobName": name})
        stub.add_client_error("stop_training_job", "ValidationException",
                              "The request was rejected because the training job is in "
                              "status Completed.", expected_params={
                                  "TrainingJobName": job_name(STUDY, 2)})
        stub.add_response("update_training_job", {"TrainingJobArn": "arn:0"},
                          {"TrainingJobName": job_name(STUDY, 0), **release})
        stub.add_client_error("update_training_job", "ValidationException",
                              "The warm pool of the training job is not in status Available.",
                              expected_params={"TrainingJobName": job_name(STUDY, 3), **release})
        assert cleanup("--experiment_tag", "study", "--yes") == 0
        stub.assert_no_pending_responses()
    out = capsys.readouterr().out
    assert f"{job_name(STUDY, 2)} ended meanwhile" in out
    assert f"no warm pool left for {job_name(STUDY, 3)}" in out
    assert "2 stopped, 1 warm pools released" in out


def test_without_yes_on_a_pipe_it_refuses_and_touches_nothing(
        session: boto3.session.Session, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    create_job(session, job_name(STUDY, 1), "InProgress")
    recorder = Recorder(session, monkeypatch)
    assert cleanup("--experiment_tag", "study") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pass --yes" in err
    assert recorder.requests == []


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("answer", "code", "stops"), [("y\n", 0, 1), ("n\n", 1, 0), ("", 1, 0)])
def test_on_a_terminal_it_asks_first(session: boto3.session.Session,
                                     monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture,
                                     answer: str, code: int, stops: int) -> None:
    create_job(session, job_name(STUDY, 1), "InProgress")
    recorder = Recorder(session, monkeypatch)
    monkeypatch.setattr("sys.stdin", Terminal(answer))
    assert cleanup("--experiment_tag", "study") == code
    assert len(recorder.calls("StopTrainingJob")) == stops
    out = capsys.readouterr().out
    assert f"will stop {job_name(STUDY, 1)}" in out and "proceed? [y/N]" in out


def test_unknown_tag_is_not_an_error(session: boto3.session.Session,
                                     capsys: pytest.CaptureFixture) -> None:
    create_job(session, job_name(OTHER, 0), "InProgress")
    assert cleanup("--experiment_tag", "nope", "--yes") == 0
    assert "no SageMaker training jobs of experiment tag 'nope'" in capsys.readouterr().out


def test_no_credentials_and_no_region(capsys: pytest.CaptureFixture,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    assert cleanup("--experiment_tag", "study", "--yes") == 2
    err = capsys.readouterr().err
    assert err == ("stbench: error: no AWS credentials: run `aws configure` or set "
                   "AWS_PROFILE\n")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert guarded(lambda: cmd_cleanup(["--experiment_tag", "study", "--yes"])) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no AWS region" in err


def test_denied_listing_is_one_line(session: boto3.session.Session,
                                    capsys: pytest.CaptureFixture,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    sm = cleanup_module.sagemaker_client(session)
    monkeypatch.setattr(cleanup_module, "sagemaker_client", lambda _: sm)
    with Stubber(sm) as stub:
        stub.add_client_error("list_training_jobs", "AccessDeniedException", "not\nallowed")
        assert cleanup("--experiment_tag", "study", "--yes") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "grant sagemaker:ListTrainingJobs" in err


def test_long_tags_hashed_names_are_told_apart() -> None:
    """Bases over 42 characters end in a hash; two tags sharing those characters differ in it."""
    long_tag = "a-rather-long-experiment-tag-for-the-nightly-comparison"
    ours = experiment_base(long_tag, "synthetic_curves", "MOBSTER", 7)
    theirs = experiment_base(long_tag + "-2", "synthetic_curves", "MOBSTER", 7)
    assert ours[:-9] == theirs[:-9] and ours != theirs  # same visible part, other hash
    assert name_key(long_tag) in job_name(ours, 3)
    matches = tag_matcher(long_tag)
    assert matches(job_name(ours, 3)) and matches(orchestrator_job_name(ours))
    assert not matches(job_name(theirs, 3))
    short = tag_matcher("study")
    assert short(job_name(STUDY, 0)) and not short(job_name(OTHER, 0))
    assert not short(f"{STUDY}-t1-r0") and not short(STUDY)


# --- docs/iam.md --------------------------------------------------------------------------

POLICY = re.compile(r"<!-- policy: (?P<name>[\w-]+) -->\s*```json\n(?P<body>.*?)```", re.S)
ROLE_MODULES = ["backends/jobs/sagemaker_checks.py", "backends/jobs/sagemaker.py",
                "backends/jobs/sagemaker_metrics.py",
                "backends/jobs/sagemaker_instances.py"]  # what `stbench run` calls, in a job too
SERVICES = {"sagemaker": "sagemaker", "logs": "logs", "ecr": "ecr", "sts": "sts", "iam": "iam",
            "s3": "s3", "servicequotas": "service-quotas"}
AS_ACTION = {"s3:HeadBucket": "s3:ListBucket",  # S3 authorizes both as ListBucket
             "s3:ListObjectsV2": "s3:ListBucket"}
IMPLIED = {"iam:PassRole", "sagemaker:AddTags"}  # CreateTrainingJob with a role and tags
DOCKER_PUSH = {"ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload",
               "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage"}
ON_ROLES_BEHALF = {"s3:GetObject", "s3:PutObject", "s3:ListBucket", "logs:CreateLogGroup",
                   "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams",
                   "ecr:GetAuthorizationToken", "ecr:BatchGetImage",
                   "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"}


def boto_calls(paths: list[Path]) -> set[str]:
    """IAM actions of the boto3 operations named in these sources (`.op(`, `.op,`, "op")."""
    loader = botocore.session.get_session()
    text = "\n".join(path.read_text() for path in paths)
    named = {a or b for a, b in re.findall(r"\.([a-z]\w*_\w+)\b|\"([a-z]\w*_\w+)\"", text)}
    found = set()
    for prefix, service in SERVICES.items():
        for operation in loader.get_service_model(service).operation_names:
            if xform_name(operation) in named:
                action = f"{prefix}:{operation}"
                found.add(AS_ACTION.get(action, action))
    return found


def documented_policies() -> dict[str, dict[str, Any]]:
    text = (REPO / "docs" / "iam.md").read_text()
    assert text.count("```json") == len(POLICY.findall(text)), "a JSON block without a marker"
    return {m["name"]: json.loads(m["body"]) for m in POLICY.finditer(text)}


def actions(policy: dict[str, Any]) -> set[str]:
    found = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow" and statement["Resource"], statement
        listed = statement["Action"]
        found |= {listed} if isinstance(listed, str) else set(listed)
    return found


def test_iam_doc_policies_parse_and_match_the_code() -> None:
    policies = documented_policies()
    assert set(policies) == {"execution-role-trust", "execution-role", "user"}
    for policy in policies.values():
        assert policy["Version"] == "2012-10-17" and policy["Statement"]
    trust = policies["execution-role-trust"]["Statement"]
    assert trust == [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
                      "Action": "sts:AssumeRole"}]

    # stbench.emulator is the fake AWS itself (it writes into moto's backends), no AWS client
    every_module = sorted(path for path in (REPO / "stbench").rglob("*.py")
                          if "emulator" not in path.relative_to(REPO / "stbench").parts)
    user_needs = boto_calls(every_module) | IMPLIED | DOCKER_PUSH
    assert {"sagemaker:StopTrainingJob", "sagemaker:UpdateTrainingJob", "s3:GetObject",
            "ecr:CreateRepository", "logs:FilterLogEvents"} <= user_needs  # the scan works
    assert actions(policies["user"]) == user_needs
    role_needs = boto_calls([REPO / "stbench" / m for m in ROLE_MODULES]) | IMPLIED
    assert actions(policies["execution-role"]) == role_needs | ON_ROLES_BEHALF

    text = (REPO / "docs" / "iam.md").read_text()
    assert not re.search(r"\b\d{12}\b", text), "a real account id in docs/iam.md"
    for placeholder in ("ACCOUNT", "REGION", "BUCKET", "PREFIX", "ROLE_NAME"):
        assert placeholder in text
