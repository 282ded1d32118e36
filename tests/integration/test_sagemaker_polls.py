"""What the SageMaker adapter's polls see: its own jobs only, every page, every log line
however late it arrives, and warm pools as DescribeTrainingJob reports them.

moto (in-process) for jobs and CloudWatch Logs; botocore's Stubber where an exact answer
of SageMaker matters (empty pages with a token, a pool reused without a listing showing it).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import boto3
import test_sagemaker_moto as adapter
from botocore.stub import ANY, Stubber
from moto.core.utils import utcnow
from test_sagemaker_moto import BASE, COMPLETED, IN_PROGRESS, described, put_logs, report, set_job

from stbench.backends.jobs.job_requests import trial_request
from stbench.backends.jobs.sagemaker import SageMakerJobService
from stbench.model.container_contract import end_line
from stbench.model.naming import experiment_base, job_name

session = adapter.session  # the mocked-AWS fixture


def service_of(session: boto3.session.Session, base: str) -> SageMakerJobService:
    return SageMakerJobService(session, base, poll_seconds=0.0)


def created(service: SageMakerJobService, base: str, trial_id: int = 0) -> str:
    name = job_name(base, trial_id)
    service.create_training_job(trial_request(adapter.TEMPLATE, name, trial_id, adapter.CONFIG))
    set_job(name, IN_PROGRESS)
    return name


def test_an_experiment_sees_only_its_own_jobs(session: boto3.session.Session) -> None:
    """Seed 1's base is a prefix of seed 10's, and tag `a`'s job names are inside tag `ba`'s:
    NameContains and logStreamNamePrefix match both, our jobs are only ours."""
    seed_1 = experiment_base("moto-study", "synthetic_curves", "ASHA", 1)
    seed_10 = experiment_base("moto-study", "synthetic_curves", "ASHA", 10)
    tag_a, tag_ba = (experiment_base(tag, "synthetic_curves", "ASHA", 1) for tag in ("a", "ba"))
    ours, theirs = service_of(session, seed_1), service_of(session, seed_10)
    mine, tens = created(ours, seed_1), created(theirs, seed_10)
    a_job, ba_job = created(service_of(session, tag_a), tag_a), created(
        service_of(session, tag_ba), tag_ba)
    logs = session.client("logs")
    for name in (mine, tens, a_job, ba_job):
        put_logs(logs, name, [report(loss=1.0, epoch=1)])

    assert list(ours.describe_training_jobs([mine, tens])) == [mine]
    assert list(ours.read_metrics([mine, tens])) == [mine]
    a_reader = service_of(session, tag_a)
    assert list(a_reader.describe_training_jobs([a_job, ba_job])) == [a_job]
    assert list(a_reader.read_metrics([a_job, ba_job])) == [a_job]


def test_listing_and_logs_follow_tokens_through_empty_pages(
        session: boto3.session.Session) -> None:
    """SageMaker applies MaxResults before some filters, and FilterLogEvents may answer an
    empty page with a token: neither ends the poll."""
    service = adapter.service_for(session)
    name = created(service, BASE)
    summary = {"TrainingJobName": name, "TrainingJobArn": f"arn:{name}",
               "CreationTime": time.time() - 60, "LastModifiedTime": time.time(),
               "TrainingJobStatus": COMPLETED}
    listing = {"NameContains": f"{BASE}-t", "MaxResults": 100, "LastModifiedTimeAfter": ANY}
    with Stubber(service.sm) as stub:
        stub.add_response("list_training_jobs", {"TrainingJobSummaries": [], "NextToken": "1"},
                          listing)
        stub.add_response("list_training_jobs", {"TrainingJobSummaries": [summary],
                                                 "NextToken": "2"}, {**listing, "NextToken": "1"})
        stub.add_response("list_training_jobs", {"TrainingJobSummaries": []},
                          {**listing, "NextToken": "2"})
        stub.add_response("describe_training_job", described(
            name, COMPLETED, BillableTimeInSeconds=5), {"TrainingJobName": name})
        status = service.describe_training_jobs([name])
        stub.assert_no_pending_responses()
    assert status[name]["TrainingJobStatus"] == COMPLETED
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


def test_a_report_delivered_after_any_look_back_is_read_once_the_job_ends(
        session: boto3.session.Session) -> None:
    """CloudWatch keeps a line's write time, however late it delivers it: a report older
    than the reader's look-back when it arrives is still read, and the trial's log counts
    as complete only once the trainer's end line and every report it announced are in."""
    service = adapter.service_for(session)
    name = created(service, BASE)
    set_job(name, IN_PROGRESS, creation_time=utcnow() - timedelta(minutes=10))
    logs = session.client("logs")
    assert adapter.poll(service, [name])[1] == {}
    two_minutes_ago = int(time.time() * 1000) - 120_000
    put_logs(logs, name, [report(loss=0.5, epoch=1)], written_ms=two_minutes_ago)
    put_logs(logs, name, [report(loss=0.4, epoch=2)], written_ms=two_minutes_ago + 1000,
             stream_epoch=1700000001)
    assert adapter.poll(service, [name])[1] == {}, "older than the look-back: not seen yet"

    set_job(name, COMPLETED, billable_time_in_seconds=60)
    put_logs(logs, name, [end_line(3)])
    status, metrics = adapter.poll(service, [name])
    assert status[name]["TrainingJobStatus"] == COMPLETED
    assert [r["epoch"] for r in metrics[name]] == [1, 2]
    assert not service.metrics_complete(name), "the end line announced 3 reports"

    put_logs(logs, name, [report(loss=0.3, epoch=3)], written_ms=two_minutes_ago + 2000)
    assert [r["epoch"] for r in adapter.poll(service, [name])[1][name]] == [3]
    assert service.metrics_complete(name)
    assert adapter.poll(service, [name])[1] == {}, "each report is handed out once"


def test_warm_pools_are_read_with_describe_not_from_the_listing(
        session: boto3.session.Session) -> None:
    """Whether LastModifiedTime moves when only the pool changes is not documented: here the
    listing still says Available while another experiment's job has taken the pool (pools
    belong to the account). The release reads the pool first and leaves it alone."""
    service = adapter.service_for(session)
    name = created(service, BASE)
    other = job_name(experiment_base("other", "synthetic_curves", "ASHA", 0), 4)
    summary = {"TrainingJobName": name, "TrainingJobArn": f"arn:{name}", "CreationTime": 1.0,
               "LastModifiedTime": time.time(), "TrainingJobStatus": COMPLETED,
               "WarmPoolStatus": {"Status": "Available"}}
    reused: dict[str, Any] = {"Status": "Reused", "ReusedByJob": other,
                              "ResourceRetainedBillableTimeInSeconds": 75}
    with Stubber(service.sm) as stub:
        stub.add_response("list_training_jobs", {"TrainingJobSummaries": [summary]})
        stub.add_response("describe_training_job", described(
            name, COMPLETED, BillableTimeInSeconds=30,
            WarmPoolStatus={"Status": "Available", "ResourceRetainedBillableTimeInSeconds": 0}),
            {"TrainingJobName": name})
        service.describe_training_jobs([name])  # the job's end: described once
        stub.add_response("list_training_jobs", {"TrainingJobSummaries": [summary]})
        assert service.describe_training_jobs([name])[name]["WarmPoolStatus"]["Status"] == \
            "Available"  # what the listing (unchanged) still says
        stub.add_response("describe_training_job", described(
            name, COMPLETED, BillableTimeInSeconds=30, WarmPoolStatus=reused),
            {"TrainingJobName": name})
        service.release_warm_pool(name)  # no UpdateTrainingJob: the pool is not ours any more
        assert service.warm_pool_status([name]) == {name: reused}  # final: no further call
        stub.assert_no_pending_responses()


def test_a_job_that_kept_no_pool_needs_no_release(session: boto3.session.Session) -> None:
    """With the default warm-pool quota of 0, a job with a keep-alive period keeps no pool:
    one DescribeTrainingJob at release says so, and nothing more is asked."""
    service = adapter.service_for(session)
    name = created(service, BASE)
    with Stubber(service.sm) as stub:
        stub.add_response("describe_training_job", described(
            name, COMPLETED, BillableTimeInSeconds=30), {"TrainingJobName": name})
        service.release_warm_pool(name)
        assert service.warm_pool_status([name]) == {name: None}
        stub.assert_no_pending_responses()
