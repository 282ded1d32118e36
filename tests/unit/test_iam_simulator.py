"""IAM's SimulatePrincipalPolicy on the endpoint (the SDK 3.x's role check asks it): the
results' shape from the API reference, decisions from the endpoint's evaluator."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode

from stbench.emulator.iam_simulator import context_entries, members, simulate

BUCKET = "arn:aws:s3:::stbench-bucket"
POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{BUCKET}/stbench/*"},
    {"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"{BUCKET}/stbench/secret/*"},
    {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*",
     "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}},
]}


def test_each_action_gets_allowed_implicit_or_explicit_deny_as_the_sdk_reads_them() -> None:
    results = simulate([POLICY], ["ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"],
                       [], {})
    assert [(r["EvalActionName"], r["EvalResourceName"], r["EvalDecision"]) for r in results] == [
        ("ecr:GetAuthorizationToken", "*", "allowed"),
        ("cloudwatch:PutMetricData", "*", "implicitDeny")]


def test_several_resources_are_allowed_only_if_each_is() -> None:
    resources = [f"{BUCKET}/stbench/a.json", f"{BUCKET}/stbench/secret/k"]
    (result,) = simulate([POLICY], ["s3:GetObject"], resources, {})
    assert result["EvalDecision"] == "explicitDeny"
    assert [(r["EvalResourceName"], r["EvalResourceDecision"])
            for r in result["ResourceSpecificResults"]] == [
        (resources[0], "allowed"), (resources[1], "explicitDeny")]


def test_context_entries_feed_the_conditions() -> None:
    form = parse_qs(urlencode({
        "ActionNames.member.1": "iam:PassRole",
        "ContextEntries.member.1.ContextKeyName": "iam:PassedToService",
        "ContextEntries.member.1.ContextKeyValues.member.1": "sagemaker.amazonaws.com",
        "ContextEntries.member.1.ContextKeyType": "string"}))
    assert members(form, "ActionNames") == ["iam:PassRole"]
    (passed,) = simulate([POLICY], ["iam:PassRole"], [], context_entries(form))
    (unknown,) = simulate([POLICY], ["iam:PassRole"], [], {})
    assert (passed["EvalDecision"], unknown["EvalDecision"]) == ("allowed", "implicitDeny")
