"""The CloudFormation template that sets up an AWS account for stbench (stbench-iam.yaml),
shipped with the package so that `stbench emulator` deploys the same file users deploy.

`render` resolves the few intrinsic functions the template uses (Ref, Fn::Sub, Fn::GetAtt,
Fn::If, Fn::Not, Fn::Equals) for given parameters, account and region, as CloudFormation
would: how tests read its policies without an account, and how a linter sees them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).with_name("stbench-iam.yaml")
STACK_NAME = "stbench"


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as data (long-form intrinsic functions only: plain YAML)."""
    return dict(yaml.safe_load(path.read_text()))


def render(template: dict[str, Any], parameters: dict[str, str], account: str, region: str,
           partition: str = "aws") -> dict[str, Any]:
    """The resources' properties with every intrinsic function resolved."""
    values = {name: str(spec.get("Default", ""))
              for name, spec in (template.get("Parameters") or {}).items()}
    values.update(parameters)
    values.update({"AWS::AccountId": account, "AWS::Region": region,
                   "AWS::Partition": partition})
    resources = template["Resources"]
    names = {logical: _physical_name(spec) for logical, spec in resources.items()}
    conditions: dict[str, bool] = {}

    def attribute(logical: str, name: str) -> str:
        kind, physical = resources[logical]["Type"], names[logical]
        if kind == "AWS::ECR::Repository":
            if name == "Arn":
                return f"arn:{partition}:ecr:{region}:{account}:repository/{physical}"
            return f"{account}.dkr.ecr.{region}.amazonaws.com/{physical}"
        if kind == "AWS::IAM::Role" and name == "Arn":
            return f"arn:{partition}:iam::{account}:role/{physical}"
        raise ValueError(f"Fn::GetAtt {logical}.{name} is not rendered")

    def ref(name: str) -> str:
        if name in values:
            return values[name]
        if resources[name]["Type"] == "AWS::IAM::ManagedPolicy":
            return f"arn:{partition}:iam::{account}:policy/{names[name]}"
        return names[name]

    def resolve(node: Any) -> Any:
        if isinstance(node, list):
            return [resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return ref(arg)
            if key == "Fn::Sub":
                return re.sub(r"\$\{([^}]+)\}", lambda m: _sub(m.group(1), ref, attribute), arg)
            if key == "Fn::GetAtt":
                return attribute(*arg)
            if key == "Fn::If":
                return resolve(arg[1] if conditions[arg[0]] else arg[2])
            if key == "Fn::Not":
                return not resolve(arg[0])
            if key == "Fn::Equals":
                return resolve(arg[0]) == resolve(arg[1])
        return {key: resolve(value) for key, value in node.items()}

    for name, expression in (template.get("Conditions") or {}).items():
        conditions[name] = bool(resolve(expression))
    for logical in resources:
        names[logical] = resolve(names[logical])
    return {logical: {**spec, "Properties": resolve(spec.get("Properties") or {})}
            for logical, spec in resources.items()}


def policies(rendered: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each managed policy's document by its logical name (ExecutionRolePolicy, UserPolicy)."""
    return {logical: spec["Properties"]["PolicyDocument"] for logical, spec in rendered.items()
            if spec["Type"] == "AWS::IAM::ManagedPolicy"}


NAME_PROPERTY = {"AWS::S3::Bucket": "BucketName", "AWS::ECR::Repository": "RepositoryName",
                 "AWS::IAM::Role": "RoleName", "AWS::IAM::ManagedPolicy": "ManagedPolicyName"}


def _physical_name(spec: dict[str, Any]) -> Any:
    return (spec.get("Properties") or {}).get(NAME_PROPERTY.get(spec["Type"], ""), "")


def _sub(name: str, ref: Any, attribute: Any) -> str:
    if "." in name and not name.startswith("AWS::"):
        return str(attribute(*name.split(".", 1)))
    return str(ref(name))
