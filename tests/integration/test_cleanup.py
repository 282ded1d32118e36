"""`stbench cleanup` against the local SageMaker endpoint and botocore's Stubber.

The endpoint runs the study's jobs for real (running, stopped, failed, with warm pools kept,
reused or released), so the cleanup's stops and releases change what the endpoint then says.
Stubber gives exact SageMaker answers that are hard to provoke there: a job that ends or a
pool that goes between the listing and the call, a listing without any WarmPoolStatus
(nothing kept a pool) whose trials ended hours ago, and a denied listing.
"""

from __future__ import annotations

import io
import signal
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import sagemaker_endpoint as endpoints
from botocore.stub import Stubber
from sagemaker_endpoint import TEMPLATE, Gate, described, script_job, wait_ended, wait_for_lines

from stbench.cli.cleanup import cmd_cleanup
from stbench.cli.main import guarded
from stbench.launch import cleanup as cleanup_module
from stbench.launch.study_jobs import tag_matcher
from stbench.model.naming import (
    JOB_NAME,
    TAG_ENV,
    experiment_base,
    job_name,
    name_key,
    orchestrator_job_name,
)

REGION = "us-east-1"
REPO = Path(__file__).resolve().parents[2]
STUDY = experiment_base("study", "synthetic_curves", "ASHA", 0)
STUDY_B = experiment_base("study", "mlp_digits", "RS", 1)
OTHER = experiment_base("study-2", "synthetic_curves", "ASHA", 0)  # its names start `study-`
POOLED = replace(TEMPLATE, keep_alive_seconds=600)  # its instance type has a warm-pool quota
RUNNING = replace(TEMPLATE, instance_type=endpoints.NO_POOL_INSTANCE)  # takes and keeps none
endpoint, session, gates = endpoints.endpoint, endpoints.session, endpoints.gates  # fixtures


@pytest.fixture(autouse=True)
def quiet_terminal(isolated_aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """No real AWS; SIGTERM handling stays pytest's."""
    monkeypatch.setattr(signal, "signal", lambda *args: None)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal unless a test says so


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    """The cleanup's SageMaker client, answered only by what a test adds (any other call
    fails); its endpoint is a closed loopback port, so nothing could reach AWS anyway."""
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}.items():
        monkeypatch.setenv(key, value)
    sm = cleanup_module.sagemaker_client(boto3.session.Session(region_name=REGION))
    monkeypatch.setattr(cleanup_module, "sagemaker_client", lambda _: sm)
    with Stubber(sm) as stub:
        yield stub
        stub.assert_no_pending_responses()


class Recorder:
    """The cleanup's client (on the endpoint), recording each request it makes."""

    def __init__(self, session: boto3.session.Session, monkeypatch: pytest.MonkeyPatch):
        self.client = cleanup_module.sagemaker_client(session)
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.client.meta.events.register("before-parameter-build.sagemaker", self._record)
        monkeypatch.setattr(cleanup_module, "sagemaker_client", lambda _: self.client)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.requests.append((model.name, dict(params)))

    def calls(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params in self.requests if name == operation]


def start(session: boto3.session.Session, name: str, *commands: str,
          template: Any = RUNNING) -> None:
    """A job running these bash commands, created as stbench creates its jobs."""
    session.client("sagemaker").create_training_job(
        **script_job(name, 0, *commands, template=template))


def cleanup(*argv: str, region: str = REGION) -> int:
    return guarded(lambda: cmd_cleanup(["--region", region, *argv]))


@pytest.mark.docker
def test_cleanup_touches_only_its_own_study(
        session: boto3.session.Session, gates: Callable[[], Gate],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    sm, hold = session.client("sagemaker"), gates()
    pools = [job_name(STUDY, 0), job_name(OTHER, 1)]
    for name in pools:
        start(session, name, template=POOLED)
    start(session, job_name(STUDY, 2), template=replace(POOLED, volume_gb=31))  # its own pool
    start(session, job_name(STUDY, 3), "exit 1")
    for name in (job_name(STUDY_B, 2), orchestrator_job_name(STUDY, 1)):  # to be stopped
        start(session, name, "echo started", hold.wait,
              template=POOLED if name == job_name(STUDY_B, 2) else RUNNING)
    ours_running = [job_name(STUDY, 1), orchestrator_job_name(STUDY), job_name(STUDY_B, 0, 1)]
    others_running = [job_name(OTHER, 0), orchestrator_job_name(OTHER), "study-notes",
                      "unrelated-job"]  # another tag's, and names stbench never gives
    wait_ended(session, *pools, job_name(STUDY, 2))
    start(session, job_name(STUDY, 1), hold.wait, template=replace(POOLED, volume_gb=31))
    for name in ours_running[1:] + others_running:
        start(session, name, hold.wait)
    for name in (job_name(STUDY_B, 2), orchestrator_job_name(STUDY, 1)):
        wait_for_lines(session, name, 1)
        sm.stop_training_job(TrainingJobName=name)
    wait_ended(session, job_name(STUDY_B, 2), orchestrator_job_name(STUDY, 1))
    pool_of = {name: described(session, name).get("WarmPoolStatus", {}).get("Status")
               for name in (*pools, job_name(STUDY, 2), job_name(STUDY_B, 2))}
    assert pool_of == {job_name(STUDY, 0): "Available", job_name(OTHER, 1): "Available",
                       job_name(STUDY, 2): "Reused", job_name(STUDY_B, 2): "Available"}
    recorder = Recorder(session, monkeypatch)

    assert cleanup("--experiment_tag", "study", "--yes", region=session.region_name) == 0

    [listing] = recorder.calls("ListTrainingJobs")[:1]
    assert listing == {"NameContains": "study", "MaxResults": 100}
    stops = [p["TrainingJobName"] for p in recorder.calls("StopTrainingJob")]
    assert stops == [orchestrator_job_name(STUDY), job_name(STUDY_B, 0, 1), job_name(STUDY, 1)]
    updates = sorted(recorder.calls("UpdateTrainingJob"), key=lambda p: p["TrainingJobName"])
    assert updates == [{"TrainingJobName": n, "ResourceConfig": {"KeepAlivePeriodInSeconds": 0}}
                       for n in (job_name(STUDY_B, 2), job_name(STUDY, 0))]
    # one describe per experiment whose names could be the study's (its Environment says;
    # these jobs have none, as before STBENCH_EXPERIMENT_TAG: their names decide), none for
    # warm pools: the summaries carry WarmPoolStatus
    bases = [JOB_NAME.match(p["TrainingJobName"])["base"]  # type: ignore[index]
             for p in recorder.calls("DescribeTrainingJob")]
    assert sorted(bases) == sorted([STUDY, STUDY_B, OTHER])
    out = capsys.readouterr().out.splitlines()
    assert f"stopped {orchestrator_job_name(STUDY)}" in out
    assert f"released the warm pool of {job_name(STUDY_B, 2)}" in out
    assert "3 stopped, 2 warm pools released" in out

    status = {name: described(session, name) for name in (
        *ours_running, *others_running, job_name(OTHER, 1), job_name(STUDY, 0),
        job_name(STUDY_B, 2), job_name(STUDY, 2))}
    assert {status[n]["TrainingJobStatus"] for n in ours_running} <= {"Stopping", "Stopped"}
    assert {status[n]["TrainingJobStatus"] for n in others_running} == {"InProgress"}
    assert {n: status[n]["WarmPoolStatus"]["Status"] for n in (
        job_name(STUDY, 0), job_name(STUDY_B, 2), job_name(OTHER, 1), job_name(STUDY, 2))} == {
        job_name(STUDY, 0): "Terminated", job_name(STUDY_B, 2): "Terminated",
        job_name(OTHER, 1): "Available", job_name(STUDY, 2): "Reused"}


def summary(name: str, status: str, pool: str | None = None,
            modified: datetime | None = None) -> dict[str, Any]:
    """A ListTrainingJobs summary as SageMaker gives it (for Stubber)."""
    row = {"TrainingJobName": name, "TrainingJobArn": f"arn:{name}", "CreationTime": 1.0,
           "LastModifiedTime": modified or datetime.now(UTC), "TrainingJobStatus": status}
    return {**row, "WarmPoolStatus": {"Status": pool}} if pool else row


RELEASE = {"ResourceConfig": {"KeepAlivePeriodInSeconds": 0}}
LISTING = {"NameContains": "study", "MaxResults": 100}


def test_summaries_with_warm_pool_status_need_no_pool_describes(
        stubbed: Stubber, capsys: pytest.CaptureFixture) -> None:
    """SageMaker's summaries carry WarmPoolStatus; a job that ended or a pool that went
    between the listing and the call is no error. Whose a job is, its Environment says:
    one describe per experiment whose names could be the study's."""
    stubbed.add_response("list_training_jobs", {"TrainingJobSummaries": [
        summary(job_name(STUDY, 0), "Completed", "Available"),
        summary(job_name(STUDY, 1), "InProgress", "InUse"),
        summary(job_name(STUDY, 2), "InProgress"),
        summary(job_name(STUDY, 3), "Completed", "Available"),
        summary(job_name(STUDY, 4), "Completed"),
        summary(job_name(OTHER, 0), "InProgress"),
        summary(job_name(OTHER, 1), "Completed", "Available"),
    ], "NextToken": "page-2"}, LISTING)
    for name, tag in ((job_name(STUDY, 0), "study"), (job_name(OTHER, 0), "study-2")):
        stubbed.add_response("describe_training_job", description(name, None, tag),
                             {"TrainingJobName": name})
    stubbed.add_response("list_training_jobs", {"TrainingJobSummaries": [
        summary(orchestrator_job_name(STUDY), "InProgress")]},
        {**LISTING, "NextToken": "page-2"})
    for name in (orchestrator_job_name(STUDY), job_name(STUDY, 1)):
        stubbed.add_response("stop_training_job", {}, {"TrainingJobName": name})
    stubbed.add_client_error("stop_training_job", "ValidationException",
                             "The request was rejected because the training job is in "
                             "status Completed.", expected_params={
                                 "TrainingJobName": job_name(STUDY, 2)})
    stubbed.add_response("update_training_job", {"TrainingJobArn": "arn:0"},
                         {"TrainingJobName": job_name(STUDY, 0), **RELEASE})
    stubbed.add_client_error("update_training_job", "ValidationException",
                             "The warm pool of the training job is not in status Available.",
                             expected_params={"TrainingJobName": job_name(STUDY, 3), **RELEASE})
    assert cleanup("--experiment_tag", "study", "--yes") == 0
    out = capsys.readouterr().out
    assert f"{job_name(STUDY, 2)} ended meanwhile" in out
    assert f"no warm pool left for {job_name(STUDY, 3)}" in out
    assert "2 stopped, 1 warm pools released" in out


def test_without_any_warm_pool_status_recent_trials_are_described_once(
        stubbed: Stubber, capsys: pytest.CaptureFixture) -> None:
    """A study none of whose jobs kept a pool lists no WarmPoolStatus at all: trials that
    ended within the longest keep-alive are described (a pool may have appeared since the
    listing), older ones and orchestrators are not."""
    now = datetime.now(UTC)
    seven_hours_ago = now - timedelta(hours=7)  # longer ago than any keep-alive
    stubbed.add_response("list_training_jobs", {"TrainingJobSummaries": [  # newest first
        summary(job_name(STUDY, 3), "Failed", modified=now - timedelta(minutes=2)),
        summary(job_name(STUDY, 0), "Completed", modified=now - timedelta(minutes=1)),
        summary(job_name(STUDY, 4), "Completed", modified=seven_hours_ago),
        summary(orchestrator_job_name(STUDY, 1), "Stopped")]}, LISTING)
    stubbed.add_response("describe_training_job", description(job_name(STUDY, 3), None, "study"),
                         {"TrainingJobName": job_name(STUDY, 3)})  # whose: once per experiment
    for name, pool in ((job_name(STUDY, 0), {"Status": "Available"}), (job_name(STUDY, 3), None)):
        stubbed.add_response("describe_training_job", description(name, pool),
                             {"TrainingJobName": name})
    stubbed.add_response("update_training_job", {"TrainingJobArn": "arn:0"},
                         {"TrainingJobName": job_name(STUDY, 0), **RELEASE})
    assert cleanup("--experiment_tag", "study", "--yes") == 0
    assert "0 stopped, 1 warm pools released" in capsys.readouterr().out


def description(name: str, pool: dict[str, Any] | None, tag: str = "study") -> dict[str, Any]:
    """A DescribeTrainingJob answer with the members the API reference requires, of a job
    that stbench created for `tag`."""
    answer = {
        "TrainingJobName": name, "TrainingJobArn": f"arn:{name}",
        "TrainingJobStatus": "Completed", "SecondaryStatus": "Completed",
        "AlgorithmSpecification": {"TrainingInputMode": "File"},
        "ModelArtifacts": {"S3ModelArtifacts": ""}, "CreationTime": 1.0,
        "ResourceConfig": {"InstanceType": "ml.c5.xlarge", "InstanceCount": 1,
                           "VolumeSizeInGB": 30, "KeepAlivePeriodInSeconds": 600},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60}, "Environment": {TAG_ENV: tag},
    }
    return {**answer, "WarmPoolStatus": pool} if pool else answer


@pytest.mark.docker
def test_without_yes_on_a_pipe_it_refuses_and_touches_nothing(
        session: boto3.session.Session, gates: Callable[[], Gate],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    start(session, job_name(STUDY, 1), gates().wait)
    recorder = Recorder(session, monkeypatch)
    assert cleanup("--experiment_tag", "study", region=session.region_name) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pass --yes" in err
    assert recorder.requests == []
    assert described(session, job_name(STUDY, 1))["TrainingJobStatus"] == "InProgress"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.docker
@pytest.mark.parametrize(("answer", "code", "statuses"), [
    ("y\n", 0, ("Stopping", "Stopped")), ("n\n", 1, ("InProgress",)), ("", 1, ("InProgress",))])
def test_on_a_terminal_it_asks_first(session: boto3.session.Session, gates: Callable[[], Gate],
                                     monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture,
                                     answer: str, code: int, statuses: tuple[str, ...]) -> None:
    start(session, job_name(STUDY, 1), gates().wait)
    monkeypatch.setattr("sys.stdin", Terminal(answer))
    assert cleanup("--experiment_tag", "study", region=session.region_name) == code
    out = capsys.readouterr().out
    assert f"will stop {job_name(STUDY, 1)}" in out and "proceed? [y/N]" in out
    assert described(session, job_name(STUDY, 1))["TrainingJobStatus"] in statuses


@pytest.mark.docker
def test_unknown_tag_is_not_an_error(session: boto3.session.Session,
                                     capsys: pytest.CaptureFixture) -> None:
    start(session, job_name(OTHER, 0))
    assert cleanup("--experiment_tag", "nope", "--yes", region=session.region_name) == 0
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


def test_denied_listing_is_one_line(stubbed: Stubber, capsys: pytest.CaptureFixture) -> None:
    stubbed.add_client_error("list_training_jobs", "AccessDeniedException", "not\nallowed")
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

