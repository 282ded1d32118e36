"""What a request to the endpoint asks IAM for: its actions, resource ARNs and context keys.

Pure (no moto, no boto3): the endpoint's IAM gate (iam_gate.py) passes the WSGI request's
parts in. Resource ARNs have the forms of AWS's Service Authorization Reference ("Actions,
resources, and condition keys for ...") for the services stbench uses: SageMaker training
jobs (CreateTrainingJob also asks for iam:PassRole on its RoleArn, with
iam:PassedToService, and for sagemaker:AddTags when it carries tags), Service Quotas, S3
(buckets and objects, path-style requests; s3:prefix for listings), ECR repositories,
CloudWatch Logs groups and streams, IAM roles and users, STS and CloudFormation stacks. Any
other action is asked for on "*".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

from stbench.emulator.iam_policy import Request

# X-Amz-Target prefix -> IAM service prefix (JSON protocols)
JSON_SERVICES = {"SageMaker": "sagemaker", "Logs_20140328": "logs",
                 "AmazonEC2ContainerRegistry_V20150921": "ecr",
                 "ServiceQuotasV20190624": "servicequotas"}
QUERY_SERVICES = ("iam", "sts", "cloudformation")  # Action=... in the form body
SAGEMAKER_JOB_ACTIONS = ("CreateTrainingJob", "DescribeTrainingJob", "StopTrainingJob",
                         "UpdateTrainingJob")
LOG_STREAM_ACTIONS = ("PutLogEvents", "GetLogEvents")
S3_OBJECT_SUBRESOURCES = {"tagging": "ObjectTagging", "acl": "ObjectAcl",
                          "retention": "ObjectRetention", "legal-hold": "ObjectLegalHold"}
NO_PERMISSION_NEEDED = {"sts:GetCallerIdentity"}  # "No permissions are required" (STS docs)


@dataclass(frozen=True)
class Incoming:
    """The parts of an HTTP request that decide what it asks for."""

    method: str
    path: str  # unquoted by the WSGI server
    query: str
    target: str  # X-Amz-Target, or ""
    service: str  # the SigV4 credential scope's service (s3, iam, sagemaker, ...)
    region: str
    body: bytes
    headers: Mapping[str, str]


def requests_of(incoming: Incoming, account: str) -> list[Request]:
    """Every (action, resource, context) the request needs allowed; [] for none."""
    region = incoming.region
    context = {"aws:RequestedRegion": region}
    prefix, _, operation = incoming.target.partition(".")
    if prefix in JSON_SERVICES:
        body = _json(incoming.body)
        service = JSON_SERVICES[prefix]
        found = {"sagemaker": _sagemaker, "logs": _logs, "ecr": _ecr,
                 "servicequotas": _anything}[service](operation, body, region, account)
        return [Request(a, r, {**context, **c}) for a, r, c in found]
    if incoming.service == "s3":
        return [Request(a, r, {**context, **c}) for a, r, c in _s3(incoming)]
    if incoming.service in QUERY_SERVICES:
        form = {**_form(incoming.query), **_form(incoming.body.decode(errors="replace"))}
        operation = form.get("Action", "")
        found = _query(incoming.service, operation, form, region, account)
        return [Request(a, r, {**context, **c}) for a, r, c in found
                if a not in NO_PERMISSION_NEEDED]
    service = incoming.service or prefix.lower() or "unknown"
    return [Request(f"{service}:{operation or incoming.method}", "*", context)]


Found = list[tuple[str, str, dict[str, Any]]]


def _sagemaker(operation: str, body: dict[str, Any], region: str, account: str) -> Found:
    action = f"sagemaker:{operation}"
    if operation not in SAGEMAKER_JOB_ACTIONS:
        return [(action, "*", {})]
    job = f"arn:aws:sagemaker:{region}:{account}:training-job/{body.get('TrainingJobName', '')}"
    if operation != "CreateTrainingJob":
        return [(action, job, {})]
    instance = str((body.get("ResourceConfig") or {}).get("InstanceType", ""))
    found: Found = [(action, job, {"sagemaker:InstanceTypes": instance})]
    if body.get("Tags"):
        found.append(("sagemaker:AddTags", job, {}))
    if body.get("RoleArn"):
        found.append(("iam:PassRole", str(body["RoleArn"]),
                      {"iam:PassedToService": "sagemaker.amazonaws.com"}))
    return found


def log_group_arn(region: str, account: str, group: str) -> str:
    return f"arn:aws:logs:{region}:{account}:log-group:{group}"


def _logs(operation: str, body: dict[str, Any], region: str, account: str) -> Found:
    group = body.get("logGroupName") or body.get("logGroupIdentifier")
    if not group:
        return [(f"logs:{operation}", "*", {})]
    arn = group if str(group).startswith("arn:") else log_group_arn(region, account, group)
    if operation in LOG_STREAM_ACTIONS and body.get("logStreamName"):
        arn = f"{arn}:log-stream:{body['logStreamName']}"
    return [(f"logs:{operation}", arn, {})]


def repository_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:ecr:{region}:{account}:repository/{name}"


def _ecr(operation: str, body: dict[str, Any], region: str, account: str) -> Found:
    action = f"ecr:{operation}"
    owner = str(body.get("registryId") or account)
    names = ([body["repositoryName"]] if body.get("repositoryName")
             else body.get("repositoryNames") or [])
    if operation == "GetAuthorizationToken" or not names:
        return [(action, "*", {})]
    return [(action, repository_arn(region, owner, name), {}) for name in names]


def _anything(operation: str, body: dict[str, Any], region: str, account: str) -> Found:
    return [(f"servicequotas:{operation}", "*", {})]


def _query(service: str, operation: str, form: dict[str, str], region: str,
           account: str) -> Found:
    action = f"{service}:{operation}"
    if service == "iam":
        if form.get("RoleName"):
            return [(action, f"arn:aws:iam::{account}:role/{form['RoleName']}", {})]
        if form.get("UserName"):
            return [(action, f"arn:aws:iam::{account}:user/{form['UserName']}", {})]
        if form.get("PolicyArn"):
            return [(action, form["PolicyArn"], {})]
        if form.get("PolicySourceArn"):  # SimulatePrincipalPolicy: the simulated principal
            return [(action, form["PolicySourceArn"], {})]
    if service == "sts" and form.get("RoleArn"):
        return [(action, form["RoleArn"], {})]
    if service == "cloudformation" and form.get("StackName"):
        name = form["StackName"]
        stack = name if name.startswith("arn:") else (
            f"arn:aws:cloudformation:{region}:{account}:stack/{name}/*")
        return [(action, stack, {})]
    return [(action, "*", {})]


def _s3(incoming: Incoming) -> Found:
    method, query = incoming.method.upper(), parse_qs(incoming.query, keep_blank_values=True)
    bucket, _, key = incoming.path.lstrip("/").partition("/")
    if not bucket:
        return [("s3:ListAllMyBuckets", "*", {})]
    bucket_arn = f"arn:aws:s3:::{bucket}"
    if key:
        return _s3_object(method, query, f"{bucket_arn}/{key}", incoming.headers)
    if method == "POST" and "delete" in query:  # DeleteObjects: each key's s3:DeleteObject
        keys = re.findall(rb"<Key>(.*?)</Key>", incoming.body, re.S)
        return [("s3:DeleteObject", f"{bucket_arn}/{_xml_text(k)}", {}) for k in keys]
    subresources = [name for name in query if name not in (
        "list-type", "prefix", "delimiter", "max-keys", "continuation-token", "start-after",
        "encoding-type", "fetch-owner", "marker", "x-id")
        and not name.lower().startswith("x-amz-")]
    if method in ("GET", "HEAD") and not subresources:
        context = {f"s3:{name}": query[name][0] for name in ("prefix", "delimiter", "max-keys")
                   if name in query}
        return [("s3:ListBucket", bucket_arn, context)]
    verb = {"GET": "Get", "HEAD": "Get", "PUT": "Put", "DELETE": "Delete"}.get(method, "Put")
    if not subresources:
        return [(f"s3:{'CreateBucket' if verb == 'Put' else 'DeleteBucket'}", bucket_arn, {})]
    named = {"location": "GetBucketLocation", "versions": "ListBucketVersions",
             "uploads": "ListBucketMultipartUploads"}
    sub = subresources[0]
    action = named.get(sub) if verb == "Get" else None
    return [(f"s3:{action or verb + 'Bucket' + sub.title().replace('-', '')}", bucket_arn, {})]


def _s3_object(method: str, query: dict[str, list[str]], arn: str,
               headers: Mapping[str, str]) -> Found:
    if "uploadId" in query or "uploads" in query:
        action = {"GET": "ListMultipartUploadParts", "DELETE": "AbortMultipartUpload"}.get(
            method, "PutObject")
        return [(f"s3:{action}", arn, {})]
    for sub, name in S3_OBJECT_SUBRESOURCES.items():
        if sub in query:
            verb = {"GET": "Get", "DELETE": "Delete"}.get(method, "Put")
            return [(f"s3:{verb}{name}", arn, {})]
    if method in ("GET", "HEAD"):
        return [("s3:GetObject", arn, {})]
    if method == "DELETE":
        return [("s3:DeleteObject", arn, {})]
    found: Found = [("s3:PutObject", arn, {})]
    source = headers.get("x-amz-copy-source", "")
    if source:  # CopyObject also reads its source
        found.append(("s3:GetObject", "arn:aws:s3:::" + unquote(source).lstrip("/").split(
            "?")[0], {}))
    return found


def _json(raw: bytes) -> dict[str, Any]:
    import json

    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _form(text: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(text, keep_blank_values=True).items()}


def _xml_text(raw: bytes) -> str:
    text = raw.decode(errors="replace")
    for entity, char in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"),
                         ("&amp;", "&")):
        text = text.replace(entity, char)
    return text


ECR_IMAGE = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com/(?P<path>[^@]+)")


def image_repository_arn(image: str, region: str, account: str,
                         registries: Iterable[str] = ()) -> str | None:
    """The ECR repository an image pull reads: an ECR URI (`<account>.dkr.ecr.<region>.
    amazonaws.com/<repository>:<tag>`) or an image of one of the endpoint's ECR `registries`
    (`host:port`), whose repository is the path without tag or digest; None for any other
    image (the local engine's, another registry's), which is not ECR's to allow."""
    match = ECR_IMAGE.match(image)
    if match:
        account, region = match.group(1), match.group(2)
        path = match.group("path")
    else:
        path = next((image[len(r) + 1:] for r in registries if image.startswith(f"{r}/")), "")
        path = path.split("@", 1)[0]
    if not path:
        return None
    head, _, last = path.rpartition("/")
    name = f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]
    return repository_arn(region, account, name)
