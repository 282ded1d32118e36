"""What a new AWS account needs before `stbench launch` can run, made on the endpoint.

On AWS a user creates an execution role that SageMaker may assume and a bucket once; a
fresh endpoint has neither. These calls go through the endpoint's public API with boto3,
as a user's would, so nothing here reaches into the emulator's state.
"""

from __future__ import annotations

import json

import boto3
from botocore.exceptions import ClientError

EXECUTION_ROLE = "stbench-emulator-sagemaker"
TRUST_SAGEMAKER = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
    "Action": "sts:AssumeRole"}]})


def _client(environment: dict[str, str], service: str):  # type: ignore[no-untyped-def]
    return boto3.session.Session(
        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
        region_name=environment["AWS_DEFAULT_REGION"],
    ).client(service, endpoint_url=environment["AWS_ENDPOINT_URL"])


def ensure_execution_role(environment: dict[str, str], name: str = EXECUTION_ROLE) -> str:
    """The ARN of a role trusting sagemaker.amazonaws.com (created on first use)."""
    iam = _client(environment, "iam")
    try:
        return str(iam.get_role(RoleName=name)["Role"]["Arn"])
    except ClientError:
        pass
    return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST_SAGEMAKER)
               ["Role"]["Arn"])


def ensure_bucket(environment: dict[str, str], bucket: str) -> str:
    s3 = _client(environment, "s3")
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        s3.create_bucket(Bucket=bucket)
    return f"s3://{bucket}"
