"""The CloudFormation template (stbench/launch/stbench-iam.yaml) is the one source of
stbench's IAM policies: its actions are what stbench's code calls, its resources are ARNs of
the forms AWS's Service Authorization Reference gives for those actions, it covers every
image repository `make push` writes, cfn-lint (AWS's linter, with its own IAM action list)
finds nothing in it, and docs/iam.md shows it verbatim."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import botocore.session
from botocore import xform_name

from stbench.emulator.iam_policy import Decision, Request, evaluate
from stbench.launch import iam_template
from stbench.launch.push import ROLES

REPO = Path(__file__).resolve().parents[2]
ACCOUNT, REGION = "111122223333", "eu-west-1"
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
# Resource ARN forms per action, from the Service Authorization Reference ("Actions,
# resources, and condition keys for" Amazon SageMaker, Amazon ECR, Amazon S3, Amazon
# CloudWatch Logs, IAM): an action without a resource type takes only "*".
SAGEMAKER_JOB = r"arn:aws:sagemaker:{region}:{account}:training-job/[^:]+"
ECR_REPOSITORY = r"arn:aws:ecr:{region}:{account}:repository/[a-z0-9._/-]+"
S3_BUCKET, S3_OBJECT = r"arn:aws:s3:::[a-z0-9.-]+", r"arn:aws:s3:::[a-z0-9.-]+/.+"
LOG_GROUP = r"arn:aws:logs:{region}:{account}:log-group:[^:]+"
LOG_STREAM = LOG_GROUP + r":log-stream:.+"
IAM_ROLE = r"arn:aws:iam::{account}:role/[\w+=,.@/-]+"
RESOURCE_FORMS = {
    "sagemaker:CreateTrainingJob": [SAGEMAKER_JOB], "sagemaker:AddTags": [SAGEMAKER_JOB],
    "sagemaker:DescribeTrainingJob": [SAGEMAKER_JOB],
    "sagemaker:StopTrainingJob": [SAGEMAKER_JOB],
    "sagemaker:UpdateTrainingJob": [SAGEMAKER_JOB], "sagemaker:ListTrainingJobs": [],
    "ecr:GetAuthorizationToken": [],
    **{f"ecr:{name}": [ECR_REPOSITORY] for name in (
        "BatchGetImage", "GetDownloadUrlForLayer", "BatchCheckLayerAvailability",
        "DescribeImages", "DescribeRepositories", "CreateRepository", "InitiateLayerUpload",
        "UploadLayerPart", "CompleteLayerUpload", "PutImage")},
    "s3:ListBucket": [S3_BUCKET], "s3:GetObject": [S3_OBJECT], "s3:PutObject": [S3_OBJECT],
    "logs:CreateLogGroup": [LOG_GROUP], "logs:CreateLogStream": [LOG_GROUP],
    "logs:DescribeLogStreams": [LOG_GROUP], "logs:FilterLogEvents": [LOG_GROUP],
    "logs:PutLogEvents": [LOG_STREAM],
    "iam:PassRole": [IAM_ROLE], "iam:GetRole": [IAM_ROLE], "sts:GetCallerIdentity": [],
    "servicequotas:ListServiceQuotas": [], "servicequotas:ListAWSDefaultServiceQuotas": [],
}


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


def rendered(**parameters: str) -> dict[str, dict[str, Any]]:
    return iam_template.policies(iam_template.render(iam_template.load(), parameters,
                                                     ACCOUNT, REGION))


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def grants(policy: dict[str, Any]) -> dict[str, set[str]]:
    """action -> the resources it is allowed on."""
    found: dict[str, set[str]] = {}
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow" and statement["Resource"], statement
        for action in listed(statement["Action"]):
            found.setdefault(action, set()).update(listed(statement["Resource"]))
    return found


def test_the_policies_grant_what_the_code_calls() -> None:
    policies = rendered()
    assert set(policies) == {"ExecutionRolePolicy", "UserPolicy"}
    # stbench.emulator is the fake AWS itself, no AWS client of a user
    every_module = sorted(path for path in (REPO / "stbench").rglob("*.py")
                          if "emulator" not in path.relative_to(REPO / "stbench").parts)
    user_needs = boto_calls(every_module) | IMPLIED | DOCKER_PUSH
    assert {"sagemaker:StopTrainingJob", "sagemaker:UpdateTrainingJob", "s3:GetObject",
            "ecr:CreateRepository", "logs:FilterLogEvents"} <= user_needs  # the scan works
    assert set(grants(policies["UserPolicy"])) == user_needs
    role_needs = boto_calls([REPO / "stbench" / m for m in ROLE_MODULES]) | IMPLIED
    assert set(grants(policies["ExecutionRolePolicy"])) == role_needs | ON_ROLES_BEHALF


def test_every_resource_has_the_form_aws_documents_for_its_action() -> None:
    """Per statement: an action without resource types has exactly "*"; otherwise every
    resource has the form of one of the statement's actions' resource types (ListBucket and
    GetObject share a statement: bucket and object ARNs), and "*" is never used."""
    for name, policy in rendered(InputBucket="channel-data").items():
        for statement in policy["Statement"]:
            actions, resources = listed(statement["Action"]), listed(statement["Resource"])
            forms = [re.compile(form.format(region=REGION, account=ACCOUNT) + r"\Z")
                     for action in actions for form in RESOURCE_FORMS[action]]
            if not forms:
                assert resources == ["*"], (name, statement["Sid"])
                continue
            assert all(RESOURCE_FORMS[action] for action in actions), statement["Sid"]
            for resource in resources:
                assert any(form.match(resource) for form in forms), (name, resource)


def allowed(policy: dict[str, Any], action: str, resource: str, **context: str) -> bool:
    return evaluate([policy], Request(action, resource, context)) is Decision.ALLOW


def test_both_identities_reach_every_image_repository_make_push_writes() -> None:
    """`make build GPU=1 && make push` also pushes stbench-trainer-gpu, which launch uses
    for resnet_cifar10: the role must pull it and the user push and describe it."""
    policies = rendered()
    for role in ROLES:
        repository = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/stbench-{role}"
        for action in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"):
            assert allowed(policies["ExecutionRolePolicy"], action, repository)
        for action in ("ecr:PutImage", "ecr:DescribeImages", "ecr:CreateRepository"):
            assert allowed(policies["UserPolicy"], action, repository)
    assert not allowed(policies["UserPolicy"], "ecr:PutImage",
                       f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/someone-else")


def test_least_privilege_where_it_matters() -> None:
    bucket = f"stbench-{ACCOUNT}-{REGION}"
    role = f"arn:aws:iam::{ACCOUNT}:role/stbench-sagemaker"
    policies = rendered(InputBucket="channel-data")
    execution, user = policies["ExecutionRolePolicy"], policies["UserPolicy"]
    for policy in (execution, user):
        assert allowed(policy, "iam:PassRole", role,
                       **{"iam:PassedToService": "sagemaker.amazonaws.com"})
        assert not allowed(policy, "iam:PassRole", role,
                           **{"iam:PassedToService": "ec2.amazonaws.com"})
        assert not allowed(policy, "iam:PassRole", role.replace("stbench-", "other-"),
                           **{"iam:PassedToService": "sagemaker.amazonaws.com"})
        assert allowed(policy, "s3:PutObject", f"arn:aws:s3:::{bucket}/stbench/t/study.json")
        assert not allowed(policy, "s3:PutObject", f"arn:aws:s3:::{bucket}/elsewhere/x")
        assert allowed(policy, "s3:ListBucket", f"arn:aws:s3:::{bucket}")  # HeadBucket
        assert not allowed(policy, "s3:ListBucket", f"arn:aws:s3:::{bucket}",
                           **{"s3:prefix": "elsewhere/"})
    # input channels outside the prefix: read by the role only, and only when named
    assert allowed(execution, "s3:GetObject", "arn:aws:s3:::channel-data/cifar10/x.npz")
    assert allowed(execution, "s3:ListBucket", "arn:aws:s3:::channel-data")
    assert not allowed(execution, "s3:PutObject", "arn:aws:s3:::channel-data/x")
    assert not allowed(user, "s3:GetObject", "arn:aws:s3:::channel-data/cifar10/x.npz")
    assert not allowed(rendered()["ExecutionRolePolicy"], "s3:GetObject",
                       "arn:aws:s3:::channel-data/cifar10/x.npz")


def test_cfn_lint_finds_nothing() -> None:
    """AWS's CloudFormation linter, which also checks every IAM action name against its
    own list of AWS's actions (rule W3037)."""
    lint = Path(sys.executable).with_name("cfn-lint")
    done = subprocess.run([str(lint), str(iam_template.TEMPLATE)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_docs_show_the_template_itself() -> None:
    text = (REPO / "docs" / "iam.md").read_text()
    block = re.search(r"<!-- template: stbench/launch/stbench-iam.yaml -->\s*```yaml\n(.*?)```",
                      text, re.S)
    assert block is not None, "docs/iam.md must show the template in a marked yaml block"
    assert block.group(1) == iam_template.TEMPLATE.read_text()
    assert "```json" not in text, "a hand-written policy beside the template"
    assert not re.search(r"\b\d{12}\b", text), "a real account id in docs/iam.md"
