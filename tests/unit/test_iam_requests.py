"""What the endpoint asks IAM for each request: actions and resource ARNs in the forms of
AWS's Service Authorization Reference, and the context keys stbench's policies test."""

from __future__ import annotations

import json

from stbench.emulator.iam_requests import Incoming, image_repository_arn, requests_of

ACCOUNT = "123456789012"


def asked(method: str = "POST", path: str = "/", query: str = "", target: str = "",
          service: str = "", body: bytes = b"", **headers: str) -> list[tuple[str, str, dict]]:
    incoming = Incoming(method, path, query, target, service, "eu-west-1", body, headers)
    return [(r.action, r.resource, {k: v for k, v in r.context.items()
                                    if k != "aws:RequestedRegion"})
            for r in requests_of(incoming, ACCOUNT)]


def test_create_training_job_asks_for_the_job_tags_and_pass_role() -> None:
    body = json.dumps({"TrainingJobName": "study-t1", "Tags": [{"Key": "a", "Value": "b"}],
                       "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/stbench-sagemaker",
                       "ResourceConfig": {"InstanceType": "ml.m5.large"}}).encode()
    job = f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:training-job/study-t1"
    assert asked(target="SageMaker.CreateTrainingJob", body=body) == [
        ("sagemaker:CreateTrainingJob", job, {"sagemaker:InstanceTypes": "ml.m5.large"}),
        ("sagemaker:AddTags", job, {}),
        ("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/stbench-sagemaker",
         {"iam:PassedToService": "sagemaker.amazonaws.com"})]
    assert asked(target="SageMaker.ListTrainingJobs", body=b"{}") == [
        ("sagemaker:ListTrainingJobs", "*", {})]


def test_s3_requests_name_buckets_objects_and_the_listing_prefix() -> None:
    bucket = "arn:aws:s3:::b"
    assert asked("HEAD", "/b", service="s3") == [("s3:ListBucket", bucket, {})]
    assert asked("GET", "/b", "list-type=2&prefix=stbench%2Ft%2F", service="s3") == [
        ("s3:ListBucket", bucket, {"s3:prefix": "stbench/t/"})]
    assert asked("GET", "/b/stbench/k", service="s3") == [("s3:GetObject", f"{bucket}/stbench/k",
                                                           {})]
    assert asked("PUT", "/b/k", "partNumber=1&uploadId=x", service="s3") == [
        ("s3:PutObject", f"{bucket}/k", {})]
    assert asked("GET", "/b", "location", service="s3") == [("s3:GetBucketLocation", bucket, {})]
    assert asked("PUT", "/b", service="s3") == [("s3:CreateBucket", bucket, {})]
    assert asked("POST", "/b", "delete", service="s3",
                 body=b"<Delete><Object><Key>a&amp;b</Key></Object></Delete>") == [
        ("s3:DeleteObject", f"{bucket}/a&b", {})]
    assert asked("GET", "/", service="s3") == [("s3:ListAllMyBuckets", "*", {})]


def test_logs_ecr_iam_and_sts_resources() -> None:
    group = f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/aws/sagemaker/TrainingJobs"
    assert asked(target="Logs_20140328.PutLogEvents", body=json.dumps(
        {"logGroupName": "/aws/sagemaker/TrainingJobs", "logStreamName": "j/algo-1"}).encode()
                 ) == [("logs:PutLogEvents", f"{group}:log-stream:j/algo-1", {})]
    assert asked(target="Logs_20140328.FilterLogEvents", body=json.dumps(
        {"logGroupName": "/aws/sagemaker/TrainingJobs"}).encode()) == [
        ("logs:FilterLogEvents", group, {})]
    ecr = "AmazonEC2ContainerRegistry_V20150921"
    assert asked(target=f"{ecr}.DescribeImages", body=b'{"repositoryName": "stbench-trainer"}'
                 ) == [("ecr:DescribeImages",
                        f"arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/stbench-trainer", {})]
    assert asked(target=f"{ecr}.GetAuthorizationToken", body=b"{}") == [
        ("ecr:GetAuthorizationToken", "*", {})]
    assert asked(service="iam", body=b"Action=GetRole&RoleName=r&Version=2010-05-08") == [
        ("iam:GetRole", f"arn:aws:iam::{ACCOUNT}:role/r", {})]
    assert asked(service="sts", body=b"Action=GetCallerIdentity") == []  # needs no permission


def test_image_repository_arns() -> None:
    assert image_repository_arn("127.0.0.1:5001/stbench-trainer:1", "eu-west-1", ACCOUNT,
                                ["127.0.0.1:5001"]) == (
        f"arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/stbench-trainer")
    assert image_repository_arn(f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/team/img@sha256:ab",
                                "eu-west-1", "999999999999") == (
        f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team/img")
    assert image_repository_arn("127.0.0.1:5000/stbench-trainer:1", "eu-west-1", ACCOUNT,
                                ["127.0.0.1:5001"]) is None  # another registry: not ECR's
    assert image_repository_arn("stbench-trainer:latest", "eu-west-1", ACCOUNT) is None
