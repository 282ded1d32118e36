"""The poll's ListTrainingJobs is bounded by the oldest running job's creation time.

SageMaker may cut a page at MaxResults before applying the name filter (the local endpoint
does, as AWS documents for some filters). Without a creation-time bound, every poll would
page through every job of the account and region, however old; with nothing running there
is nothing to list at all.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
from botocore.stub import ANY, Stubber

from stbench.backends.jobs.job_requests import JobTemplate, trial_request
from stbench.backends.jobs.sagemaker import LIST_MARGIN_SECONDS, SageMakerJobService
from stbench.model.naming import experiment_base, job_name

BASE = experiment_base("bounds", "synthetic_curves", "ASHA", 0)
CREATED = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
TEMPLATE = JobTemplate(image="123456789012.dkr.ecr.us-east-1.amazonaws.com/stbench-trainer:1",
                       benchmark="synthetic_curves", instance_type="ml.c5.xlarge",
                       checkpoint_root="s3://b/c/", output_root="s3://b/o/",
                       role_arn="arn:aws:iam::123456789012:role/r")


def service() -> SageMakerJobService:
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name="us-east-1")
    return SageMakerJobService(session, BASE, poll_seconds=0.0)


def test_nothing_running_means_no_listing() -> None:
    jobs = service()
    with Stubber(jobs.sm) as stub:  # any call would fail: no responses are queued
        assert jobs.describe_training_jobs([]) == {}
        stub.assert_no_pending_responses()


def test_listing_starts_at_the_oldest_running_job() -> None:
    jobs = service()
    name = job_name(BASE, 0)
    date = CREATED.strftime("%a, %d %b %Y %H:%M:%S GMT")
    with Stubber(jobs.sm) as stub:
        stub.add_response("create_training_job", {
            "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}",
            "ResponseMetadata": {"HTTPHeaders": {"date": date}}})
        jobs.create_training_job(trial_request(TEMPLATE, name, 0, {"x": 0.5}))
        stub.add_response("list_training_jobs", {"TrainingJobSummaries": []}, {
            "NameContains": f"{BASE}-t", "MaxResults": 100, "LastModifiedTimeAfter": ANY,
            "CreationTimeAfter": CREATED - timedelta(seconds=LIST_MARGIN_SECONDS)})
        assert jobs.describe_training_jobs([name])[name]["TrainingJobStatus"] == "InProgress"
        stub.assert_no_pending_responses()
