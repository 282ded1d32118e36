"""A trial job that failed before its Training phase wrote no log: its trial fails at once.

Before, the back-end waited LOG_PATIENCE_SECONDS (5 minutes) for the trainer's end line of a
job whose container never ran (an image SageMaker could not pull, an instance it could not
get), and the worker stayed idle meanwhile. DescribeTrainingJob's SecondaryStatusTransitions
tell whether the job ever reached Training.
"""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from stbench.backends.jobs.sagemaker import SageMakerJobService
from stbench.model.naming import experiment_base, job_name

BASE = experiment_base("never", "synthetic_curves", "ASHA", 0)
NAME = job_name(BASE, 0)
NOW = datetime.now(UTC)


def described(transitions: list[str]) -> dict:
    """DescribeTrainingJob of a failed job, with the members the API reference requires."""
    return {
        "TrainingJobName": NAME, "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:1:job/{NAME}",
        "ModelArtifacts": {"S3ModelArtifacts": ""}, "TrainingJobStatus": "Failed",
        "SecondaryStatus": "Failed", "FailureReason": "ClientError: Cannot pull image",
        "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
        "ResourceConfig": {"InstanceType": "ml.c5.xlarge", "InstanceCount": 1,
                           "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60}, "CreationTime": NOW,
        "TrainingEndTime": NOW, "LastModifiedTime": NOW,
        "SecondaryStatusTransitions": [{"Status": s, "StartTime": NOW} for s in transitions],
    }


@pytest.mark.parametrize(("transitions", "final"), [
    (["Starting", "Downloading", "Failed"], True),   # never ran: nothing will be logged
    (["Starting", "Downloading", "Training", "Failed"], False),  # ran: its log may trail
])
def test_reports_are_final_for_a_job_that_never_trained(transitions: list[str],
                                                        final: bool) -> None:
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name="us-east-1")
    service = SageMakerJobService(session, BASE, poll_seconds=0.0)
    with Stubber(service.sm) as stub:  # a job of an earlier process: described, not listed
        stub.add_response("describe_training_job", described(transitions),
                          {"TrainingJobName": NAME})
        assert service.describe_training_jobs([NAME])[NAME]["TrainingJobStatus"] == "Failed"
    assert service.metrics_complete(NAME) is final
