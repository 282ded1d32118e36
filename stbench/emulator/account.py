"""What a new AWS account needs before `stbench launch` can run, made on the endpoint.

On AWS a user deploys stbench's CloudFormation template once (the execution role, the
bucket, the ECR repositories and the launching user's policy); a fresh endpoint has none.
These calls go through the endpoint's public API with boto3, as a user's would, so nothing
here reaches into the emulator's state.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

EXECUTION_ROLE = "stbench-emulator-sagemaker"
ADMINISTRATOR = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": "*", "Resource": "*"}]})
LAUNCHING_USER = "stbench-user"  # holds the template's UserPolicy
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
    """The ARN of a role trusting sagemaker.amazonaws.com that may do everything (created on
    first use): for tests and benches that are not about IAM. The least-privilege role is the
    CloudFormation template's (`deploy_stack`)."""
    iam = _client(environment, "iam")
    try:
        arn = str(iam.get_role(RoleName=name)["Role"]["Arn"])
    except ClientError:
        arn = str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST_SAGEMAKER)
                  ["Role"]["Arn"])
    iam.put_role_policy(RoleName=name, PolicyName="administrator", PolicyDocument=ADMINISTRATOR)
    return arn


def ensure_bucket(environment: dict[str, str], bucket: str) -> str:
    s3 = _client(environment, "s3")
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        s3.create_bucket(Bucket=bucket)
    return f"s3://{bucket}"


def deploy_stack(environment: dict[str, str], parameters: dict[str, str] | None = None,
                 stack: str = "", template: Path | None = None) -> dict[str, str]:
    """The stack's outputs, after creating it from stbench's CloudFormation template (or
    `template`) unless it exists: what `aws cloudformation deploy` does on AWS. moto creates
    the resources synchronously."""
    from stbench.launch.iam_template import STACK_NAME, TEMPLATE

    stack = stack or STACK_NAME
    cloudformation = _client(environment, "cloudformation")
    try:
        found = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError:
        found = []
    if not found:
        cloudformation.create_stack(
            StackName=stack, TemplateBody=(template or TEMPLATE).read_text(),
            Capabilities=["CAPABILITY_NAMED_IAM"],
            Parameters=[{"ParameterKey": key, "ParameterValue": value}
                        for key, value in (parameters or {}).items()])
        found = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    return {output["OutputKey"]: output["OutputValue"] for output in found[0].get("Outputs", [])}


def launching_user(environment: dict[str, str], policy_arn: str,
                   name: str = LAUNCHING_USER) -> dict[str, str]:
    """A new access key of an IAM user (created on first use) that holds `policy_arn`."""
    iam = _client(environment, "iam")
    try:
        iam.get_user(UserName=name)
    except ClientError:
        iam.create_user(UserName=name)
    iam.attach_user_policy(UserName=name, PolicyArn=policy_arn)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
