"""The endpoint's identity-policy evaluator against the rules AWS documents in the IAM User
Guide (sections named in each test), and against the template's own statements."""

from __future__ import annotations

from typing import Any

import pytest

from stbench.emulator.iam_policy import (
    Decision,
    Request,
    UnknownOperator,
    arn_matches,
    denial_message,
    evaluate,
)

ROLE = "arn:aws:iam::123456789012:role/stbench-sagemaker"
OBJECT = "arn:aws:s3:::bucket/stbench/tag/checkpoints/t1/state.json"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def decide(policies: list[dict[str, Any]], action: str, resource: str = "*",
           **context: Any) -> Decision:
    return evaluate(policies, Request(action, resource, {k.replace("__", ":"): v
                                                         for k, v in context.items()}))


def test_no_statement_means_implicit_deny() -> None:
    """"By default, all requests are implicitly denied" ("Policy evaluation logic")."""
    assert decide([], "s3:GetObject", OBJECT) is Decision.IMPLICIT_DENY
    assert decide([policy(allow("s3:PutObject", OBJECT))], "s3:GetObject",
                  OBJECT) is Decision.IMPLICIT_DENY


def test_explicit_deny_overrides_any_allow() -> None:
    """"An explicit deny in any policy overrides any allows" ("The difference between
    explicit and implicit denies"), whichever policy or order it comes in."""
    deny = {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}
    for policies in ([policy(allow("s3:GetObject", OBJECT)), policy(deny)],
                     [policy(deny), policy(allow("*"))], [policy(allow("*"), deny)]):
        assert decide(policies, "s3:GetObject", OBJECT) is Decision.EXPLICIT_DENY


def test_actions_match_without_case_and_with_wildcards() -> None:
    """"Action names are case insensitive"; `*` and `?` wildcards ("IAM JSON policy
    elements: Action")."""
    policies = [policy(allow(["S3:getobject", "sagemaker:Describe*", "ecr:Get????Url*"]))]
    assert decide(policies, "s3:GetObject") is Decision.ALLOW
    assert decide(policies, "sagemaker:DescribeTrainingJob") is Decision.ALLOW
    assert decide(policies, "ecr:GetDownloadUrlForLayer") is Decision.IMPLICIT_DENY  # 8 chars
    assert decide([policy(allow("ecr:Get????????UrlForLayer"))],
                  "ecr:GetDownloadUrlForLayer") is Decision.ALLOW
    assert decide(policies, "sagemaker:CreateTrainingJob") is Decision.IMPLICIT_DENY


def test_not_action_and_not_resource_match_everything_else() -> None:
    """NotAction/NotResource "explicitly match everything except the specified list"
    ("IAM JSON policy elements: NotAction", "NotResource")."""
    policies = [policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})]
    assert decide(policies, "s3:GetObject", OBJECT) is Decision.ALLOW
    assert decide(policies, "iam:PassRole", ROLE) is Decision.IMPLICIT_DENY
    policies = [policy({"Effect": "Allow", "Action": "s3:*",
                        "NotResource": "arn:aws:s3:::secret/*"})]
    assert decide(policies, "s3:GetObject", OBJECT) is Decision.ALLOW
    assert decide(policies, "s3:GetObject", "arn:aws:s3:::secret/a") is Decision.IMPLICIT_DENY
    deny_others = {"Effect": "Deny", "Action": "s3:*", "NotResource": "arn:aws:s3:::bucket/*"}
    assert decide([policy(allow("*"), deny_others)], "s3:GetObject",
                  "arn:aws:s3:::other/x") is Decision.EXPLICIT_DENY


def test_resources_match_case_sensitively_part_by_part() -> None:
    """Resource ARNs are case sensitive; wildcards work "within any ARN segment (the parts
    separated by colons)" and the resource part may hold colons ("IAM JSON policy elements:
    Resource")."""
    assert arn_matches("arn:aws:s3:::bucket/stbench/*", OBJECT)
    assert not arn_matches("arn:aws:s3:::Bucket/stbench/*", OBJECT)
    assert not arn_matches("arn:aws:s3:::bucket/stbench/*", "arn:aws:s3:::bucket/other/x")
    assert arn_matches("arn:aws:s3:::bucket/stbench/*", "arn:aws:s3:::bucket/stbench/")
    assert not arn_matches("arn:aws:s3:::bucket", "arn:aws:s3:::bucket/key")
    stream = ("arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/TrainingJobs"
              ":log-stream:job/algo-1-1")
    assert arn_matches("arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/"
                       "TrainingJobs:log-stream:*", stream)
    assert arn_matches("arn:aws:logs:*:*:log-group:/aws/sagemaker/*", stream)
    assert not arn_matches("arn:aws:logs:eu-west-1:*:log-group:*", stream)
    assert arn_matches("arn:aws:sagemaker:us-east-?:123456789012:training-job/*",
                       "arn:aws:sagemaker:us-east-1:123456789012:training-job/study-t1")
    assert arn_matches("*", "anything")


def test_pass_role_needs_its_condition() -> None:
    """iam:PassRole with `StringEquals iam:PassedToService` (IAM User Guide, "Granting a
    user permissions to pass a role to an AWS service"): another service, or no service in
    the request, is not allowed."""
    grant = allow("iam:PassRole", ROLE, Condition={
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}})
    assert decide([policy(grant)], "iam:PassRole", ROLE,
                  iam__PassedToService="sagemaker.amazonaws.com") is Decision.ALLOW
    assert decide([policy(grant)], "iam:PassRole", ROLE,
                  iam__PassedToService="ec2.amazonaws.com") is Decision.IMPLICIT_DENY
    assert decide([policy(grant)], "iam:PassRole", ROLE) is Decision.IMPLICIT_DENY
    assert decide([policy(grant)], "iam:PassRole", ROLE + "-2",
                  iam__PassedToService="sagemaker.amazonaws.com") is Decision.IMPLICIT_DENY


def test_if_exists_lets_requests_without_the_key_through() -> None:
    """"...IfExists: if the policy key is present in the context of the request, process
    the key as specified in the policy. If the key is not present, evaluate the condition
    element as true" ("IAM JSON policy elements: Condition operators")."""
    bucket = "arn:aws:s3:::bucket"
    for operator, expect_missing in (("StringLikeIfExists", Decision.ALLOW),
                                     ("StringLike", Decision.IMPLICIT_DENY)):
        grant = allow("s3:ListBucket", bucket, Condition={operator: {"s3:prefix": [
            "stbench/*"]}})
        assert decide([policy(grant)], "s3:ListBucket", bucket) is expect_missing
        assert decide([policy(grant)], "s3:ListBucket", bucket,
                      s3__prefix="stbench/tag/") is Decision.ALLOW
        assert decide([policy(grant)], "s3:ListBucket", bucket,
                      s3__prefix="other/") is Decision.IMPLICIT_DENY


def test_conditions_and_across_keys_or_across_values() -> None:
    """"If your policy has multiple condition operators or multiple keys attached to a single
    condition operator, the conditions are evaluated using a logical AND"; several values for
    one key are ORed ("Creating a condition with multiple keys or values"). Condition key
    names are not case-sensitive."""
    grant = allow("sagemaker:CreateTrainingJob", "*", Condition={
        "StringEquals": {"sagemaker:InstanceTypes": ["ml.m5.large", "ml.c5.xlarge"]},
        "NumericLessThanEquals": {"sagemaker:MaxRuntimeInSeconds": "3600"}})
    ok = {"sagemaker__instancetypes": "ml.c5.xlarge", "SageMaker__MaxRuntimeInSeconds": "600"}
    assert decide([policy(grant)], "sagemaker:CreateTrainingJob", **ok) is Decision.ALLOW
    assert decide([policy(grant)], "sagemaker:CreateTrainingJob",
                  **{**ok, "SageMaker__MaxRuntimeInSeconds": "7200"}) is Decision.IMPLICIT_DENY
    assert decide([policy(grant)], "sagemaker:CreateTrainingJob",
                  **{**ok, "sagemaker__instancetypes": "ml.p3.2xlarge"}
                  ) is Decision.IMPLICIT_DENY


def test_negated_operators_and_set_qualifiers() -> None:
    """StringNotEquals holds when no value matches, and for a missing key; ForAllValues holds
    when every request value matches (and for no values), ForAnyValue when one does
    ("Condition operators", "Multivalued context keys")."""
    deny = {"Effect": "Deny", "Action": "*", "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["us-east-1"]}}}
    policies = [policy(allow("*"), deny)]
    assert decide(policies, "s3:GetObject", aws__RequestedRegion="us-east-1") is Decision.ALLOW
    assert decide(policies, "s3:GetObject",
                  aws__RequestedRegion="eu-west-1") is Decision.EXPLICIT_DENY
    assert decide(policies, "s3:GetObject") is Decision.EXPLICIT_DENY
    all_values = allow("ecr:TagResource", "*", Condition={
        "ForAllValues:StringEquals": {"aws:TagKeys": ["project", "owner"]}})
    any_value = allow("ecr:TagResource", "*", Condition={
        "ForAnyValue:StringLike": {"aws:TagKeys": ["own*"]}})
    assert decide([policy(all_values)], "ecr:TagResource",
                  aws__TagKeys=["project"]) is Decision.ALLOW
    assert decide([policy(all_values)], "ecr:TagResource",
                  aws__TagKeys=["project", "cost"]) is Decision.IMPLICIT_DENY
    assert decide([policy(all_values)], "ecr:TagResource") is Decision.ALLOW
    assert decide([policy(any_value)], "ecr:TagResource",
                  aws__TagKeys=["cost", "owner"]) is Decision.ALLOW
    assert decide([policy(any_value)], "ecr:TagResource") is Decision.IMPLICIT_DENY


def test_arn_like_bool_and_null() -> None:
    """ArnLike matches part by part; Bool compares "true"/"false"; Null "true" means the
    key is absent ("Condition operators")."""
    grant = allow("iam:PassRole", "*", Condition={
        "ArnLike": {"aws:SourceArn": "arn:aws:sagemaker:*:123456789012:training-job/*"},
        "Bool": {"aws:SecureTransport": "true"}, "Null": {"aws:TokenIssueTime": "true"}})
    context = {"aws__SourceArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/a",
               "aws__SecureTransport": "True"}
    assert decide([policy(grant)], "iam:PassRole", ROLE, **context) is Decision.ALLOW
    assert decide([policy(grant)], "iam:PassRole", ROLE, **context,
                  aws__TokenIssueTime="2026-01-01T00:00:00Z") is Decision.IMPLICIT_DENY
    assert decide([policy(grant)], "iam:PassRole", ROLE, **{
        **context, "aws__SourceArn": "arn:aws:sagemaker:us-east-1:999999999999:training-job/a"}
                  ) is Decision.IMPLICIT_DENY


def test_an_unknown_operator_is_refused_not_guessed() -> None:
    grant = allow("s3:GetObject", "*", Condition={"DateGreaterThan": {"aws:CurrentTime": "x"}})
    with pytest.raises(UnknownOperator):
        decide([policy(grant)], "s3:GetObject", OBJECT, aws__CurrentTime="y")


def test_a_single_statement_object_and_string_lists_are_accepted() -> None:
    """Statement, Action and Resource may each be one value or a list ("IAM JSON policy
    element reference")."""
    single = {"Version": "2012-10-17", "Statement": allow("s3:GetObject", OBJECT)}
    assert decide([single], "s3:GetObject", OBJECT) is Decision.ALLOW


def test_denial_messages_use_aws_wording() -> None:
    """"User: <principal> is not authorized to perform: <action> on resource: <resource>
    because no identity-based policy allows the <action> action" ("Troubleshoot access
    denied error messages")."""
    request = Request("iam:PassRole", ROLE)
    user = "arn:aws:iam::123456789012:user/stbench"
    assert denial_message(user, request, Decision.IMPLICIT_DENY) == (
        f"User: {user} is not authorized to perform: iam:PassRole on resource: {ROLE} "
        "because no identity-based policy allows the iam:PassRole action")
    assert denial_message(user, request, Decision.EXPLICIT_DENY).endswith(
        "with an explicit deny in an identity-based policy")
