"""Check a SageMaker setup before any job is created, so a study fails in seconds, not per trial.

Each problem (credentials, region, role, bucket, image, instance type) becomes one
``UserError`` line naming it and the fix. Only read-only calls are made: STS
GetCallerIdentity, IAM GetRole, S3 HeadBucket and ECR DescribeImages (and, for an image URI
not in ECR's documented form, ECR GetAuthorizationToken, to learn the registry's name).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import boto3
from botocore import exceptions as aws
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from stbench.backends.aws import (
    DENIED,
    check_credentials,
    credential_errors,
    error_code,
    one_line,
)
from stbench.backends.jobs.sagemaker_instances import check_instance_type
from stbench.model.errors import UserError

logger = logging.getLogger(__name__)

ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})$")
S3_ROOT = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(.*))?$")
# The documented ECR image URI: <account>.dkr.ecr.<region>.amazonaws.com/<repo>[:<tag>|@<digest>]
ECR_IMAGE = re.compile(
    r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com/([a-z0-9][a-z0-9._/-]*)"
    r"(?::([\w][\w.-]{0,127})|@(sha256:[0-9a-f]{64}))?$"
)
ECR_FORM = "<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>"
# Any other registry: HOST[:PORT]/<repo>[:<tag>|@<digest>] (what `make push REGISTRY=` prints)
REGISTRY_IMAGE = re.compile(
    r"^([A-Za-z0-9][A-Za-z0-9.-]*(?::\d{1,5})?)/([a-z0-9][a-z0-9._/-]*)"
    r"(?::([\w][\w.-]{0,127})|@(sha256:[0-9a-f]{64}))?$"
)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")  # Docker pulls from these over plain HTTP
MANIFEST_TYPES = ", ".join((
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
))
NO_BUCKET = {"404", "NoSuchBucket", "NotFound"}
# Short timeouts and few retries: a check that hangs defeats its purpose.
CLIENT_CONFIG = Config(connect_timeout=10, read_timeout=20, retries={"max_attempts": 3})


@dataclass(frozen=True)
class CheckedSetup:
    """What the checks confirmed, in the form the SageMaker adapter needs."""

    region: str
    account: str
    role_arn: str
    bucket: str
    prefix: str  # no leading or trailing '/'; "" for the bucket root
    image_uri: str

    def study_uri(self, tag: str) -> str:
        """Where a study's files live (no trailing '/'): study.json, code, experiments."""
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/") + f"/{tag}"

    def experiment_uri(self, tag: str, benchmark: str, method: str, seed: int) -> str:
        """Where one experiment's checkpoints and outputs live (no trailing '/')."""
        return f"{self.study_uri(tag)}/{benchmark}/{method}/{seed}"


def check_sagemaker_setup(
    session: boto3.session.Session,
    role_arn: str | None,
    s3_root: str | None,
    image_uri: str | None,
    instance_type: str,
) -> CheckedSetup:
    """Raise ``UserError`` (one line: problem and fix) for the first thing that would fail.

    Local checks run first, then the read-only AWS calls, so typos cost no network time.
    """
    region = check_credentials(session)
    check_instance_type(instance_type)
    role_account, role_name = _parse_role(role_arn)
    bucket, prefix = parse_s3_root(s3_root)
    image = _parse_any_image(image_uri, region)
    with _aws("sts:GetCallerIdentity", region):
        account = str(_client(session, "sts", region).get_caller_identity()["Account"])
    if role_account != account:
        raise UserError(
            f"execution role {role_arn} is in account {role_account} but your credentials are "
            f"for account {account}: pass --role with a role of account {account}"
        )
    _check_role(session, region, str(role_arn), role_name, account)
    check_bucket(session, region, bucket)
    _check_any_image(session, region, str(image_uri), image)
    return CheckedSetup(region, account, str(role_arn), bucket, prefix, str(image_uri))


def _parse_role(role_arn: str | None) -> tuple[str, str]:
    form = "arn:aws:iam::<account>:role/<name>"
    if not role_arn:
        raise UserError(f"no execution role: pass --role ARN (a role SageMaker can assume, {form})")
    match = ROLE_ARN.match(role_arn)
    if match is None:
        raise UserError(f"--role '{role_arn}' is not an IAM role ARN: pass {form}")
    return match.group(1), match.group(2)


def parse_s3_root(s3_root: str | None) -> tuple[str, str]:
    if not s3_root:
        raise UserError("no S3 location for results: pass --s3_root s3://<bucket>/<prefix>")
    match = S3_ROOT.match(s3_root)
    if match is None:
        raise UserError(f"--s3_root '{s3_root}' is not an S3 URI: pass s3://<bucket>/<prefix>")
    return match.group(1), (match.group(2) or "").strip("/")


def _parse_any_image(image_uri: str | None, region: str) -> tuple[str, str, dict[str, str]]:
    """(account, repository, image id) of an ECR image, or ("", host, {repo: reference}) of
    an image in another registry."""
    if not image_uri:
        raise UserError(f"no trainer image: run `make push` and pass --image {ECR_FORM}")
    if ECR_IMAGE.match(image_uri) is None and (other := REGISTRY_IMAGE.match(image_uri)):
        host, repository, tag, digest = other.groups()
        if "." in host or ":" in host or host == "localhost":  # else a Docker Hub user name
            return "", host, {repository: digest or tag or "latest"}
    return _parse_image(image_uri, region)


def _parse_image(image_uri: str | None, region: str) -> tuple[str, str, dict[str, str]]:
    if not image_uri:
        raise UserError(f"no trainer image: run `make push` and pass --image {ECR_FORM}")
    match = ECR_IMAGE.match(image_uri)
    if match is None:
        raise UserError(
            f"image '{image_uri}' is not an image URI of a registry ({ECR_FORM}, or "
            "HOST[:PORT]/<repo>:<tag>): run `make push` and pass the URI it prints with --image"
        )
    account, image_region, repository, tag, digest = match.groups()
    if image_region != region:  # SageMaker pulls only from the job's own region
        raise UserError(f"image {image_uri} is in region {image_region} but jobs run in {region}: "
                        f"run `make push` for {region} or pass --region {image_region}")
    image_id = {"imageDigest": digest} if digest else {"imageTag": tag or "latest"}
    return account, repository, image_id


@contextmanager
def _aws(what: str, region: str) -> Iterator[None]:
    """Errors a check did not map itself still become one actionable line."""
    try:
        with credential_errors():
            yield
    except aws.EndpointConnectionError as err:
        raise UserError(
            f"cannot reach AWS ({what}) in region {region}: check --region and your network"
        ) from err
    except (ClientError, BotoCoreError) as err:
        raise UserError(f"{what} failed: {one_line(err)}; fix the AWS setup and retry") from err


def _client(session: boto3.session.Session, service: str, region: str) -> Any:
    return session.client(service, region_name=region, config=CLIENT_CONFIG)


def _check_role(session: boto3.session.Session, region: str, role_arn: str, name: str,
                account: str) -> None:
    with _aws("iam:GetRole", region):
        try:
            role = _client(session, "iam", region).get_role(RoleName=name)["Role"]
        except ClientError as err:
            if error_code(err) == "NoSuchEntity":
                raise UserError(
                    f"execution role {name} does not exist in account {account}: create it "
                    "(trusting sagemaker.amazonaws.com) or pass --role with an existing role ARN"
                ) from err
            if error_code(err) in DENIED:  # many users may pass a role but not read it
                logger.warning("cannot read role %s (%s); not checking it", name, error_code(err))
                return
            raise
    if role.get("Arn") and role["Arn"] != role_arn:
        raise UserError(f"execution role {name} has ARN {role['Arn']}: pass --role {role['Arn']}")
    trust = role.get("AssumeRolePolicyDocument", "")
    text = json.dumps(trust) if isinstance(trust, dict) else unquote(str(trust))
    if "sagemaker.amazonaws.com" not in text:
        raise UserError(
            f"execution role {name} does not trust sagemaker.amazonaws.com: add that service "
            "principal (sts:AssumeRole) to the role's trust policy"
        )


def check_bucket(session: boto3.session.Session, region: str, bucket: str) -> None:
    with _aws("s3:HeadBucket", region):
        try:
            response = _client(session, "s3", region).head_bucket(Bucket=bucket)
        except ClientError as err:
            code = error_code(err)
            if code in NO_BUCKET:
                raise UserError(
                    f"S3 bucket {bucket} does not exist: create it with `aws s3 mb s3://{bucket} "
                    f"--region {region}` or pass another --s3_root"
                ) from err
            if code in DENIED:
                raise UserError(
                    f"no access to S3 bucket {bucket} (403): grant your credentials access to it "
                    "or pass a bucket you own with --s3_root"
                ) from err
            raise
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    bucket_region = headers.get("x-amz-bucket-region")
    if bucket_region and bucket_region != region:  # jobs read and write only their region's S3
        raise UserError(f"S3 bucket {bucket} is in {bucket_region} but jobs run in {region}: "
                        f"pass --region {bucket_region} or an --s3_root bucket in {region}")


def _check_ecr_image(session: boto3.session.Session, region: str, image_uri: str,
                     account: str | None, repository: str, image_id: dict[str, str]) -> None:
    """`account` None: the caller's own registry (an URI that names no account)."""
    registry = {"registryId": account} if account else {}
    with _aws("ecr:DescribeImages", region):
        try:
            _client(session, "ecr", region).describe_images(
                **registry, repositoryName=repository, imageIds=[image_id]
            )
        except ClientError as err:
            code = error_code(err)
            if code in ("ImageNotFoundException", "RepositoryNotFoundException"):
                ((kind, value),) = image_id.items()  # imageTag or imageDigest
                missing = f"no {kind.removeprefix('image').lower()} {value}"
                why = f"no repository {repository}" if code.startswith("Repo") else missing
                msg = f"image {image_uri} not found in ECR ({why}): run `make push`"
                raise UserError(msg) from err
            if code in DENIED:
                raise UserError(
                    f"no permission to read ECR repository {repository} in account "
                    f"{account or 'of your credentials'}: "
                    "grant ecr:DescribeImages, or pass an --image you pushed with `make push`"
                ) from err
            raise


def check_image(session: boto3.session.Session, region: str, image_uri: str) -> None:
    """One more image that must exist (e.g. the orchestrator's, for remote launch)."""
    _check_any_image(session, region, image_uri, _parse_any_image(image_uri, region))


def _check_any_image(session: boto3.session.Session, region: str, image_uri: str,
                     image: tuple[str, str, dict[str, str]]) -> None:
    account, where, image_id = image
    if account:
        _check_ecr_image(session, region, image_uri, account, where, image_id)
        return
    ((repository, reference),) = image_id.items()
    if where == _ecr_registry(session, region):
        kind = "imageDigest" if reference.startswith("sha256:") else "imageTag"
        _check_ecr_image(session, region, image_uri, None, repository, {kind: reference})
    else:
        _check_registry_image(image_uri, where, repository, reference)


def _ecr_registry(session: boto3.session.Session, region: str) -> str | None:
    """The host[:port] of the account's ECR registry as ECR names it (GetAuthorizationToken's
    proxyEndpoint), or None when ECR does not answer. An image of another form than ECR's
    documented one is an ECR image when its registry is this one: on AWS it never is, on the
    local SageMaker endpoint it is that endpoint's registry on 127.0.0.1."""
    try:
        data = _client(session, "ecr", region).get_authorization_token()["authorizationData"]
    except (ClientError, BotoCoreError) as err:
        logger.debug("ECR GetAuthorizationToken failed (%s): not an ECR image", one_line(err))
        return None
    endpoint = str(data[0].get("proxyEndpoint", "")) if data else ""
    return endpoint.removeprefix("https://").removeprefix("http://").rstrip("/") or None


def _check_registry_image(image_uri: str, host: str, repository: str, reference: str) -> None:
    """An image outside ECR, asked of its registry's HTTP API (Docker Registry v2).

    SageMaker on AWS pulls from ECR, or from a private registry only in VPC access mode,
    which stbench does not set up; the local SageMaker endpoint pulls from loopback
    registries (`make push REGISTRY=127.0.0.1:PORT`)."""
    import requests

    loopback = any(host == h or host.startswith(f"{h}:") for h in LOOPBACK_HOSTS)
    scheme = "http" if loopback else "https"
    url = f"{scheme}://{host}/v2/{repository}/manifests/{reference}"
    session = requests.Session()
    session.trust_env = not loopback  # no proxy from the environment for 127.0.0.1
    try:
        answer = session.head(url, headers={"Accept": MANIFEST_TYPES}, timeout=10)
    except requests.RequestException as err:
        raise UserError(f"cannot reach registry {host} to check image {image_uri}: start it, "
                        "or push to ECR with `make push` and pass that URI") from err
    if answer.status_code == 404:
        raise UserError(f"image {image_uri} not found in registry {host}: run "
                        f"`make push REGISTRY={host}`")
    if answer.status_code >= 400:
        raise UserError(f"registry {host} answered {answer.status_code} for image {image_uri}: "
                        "SageMaker pulls without credentials; push to ECR with `make push`")
    if scheme == "https":
        logger.warning("image %s is not in ECR: SageMaker pulls from another registry only in "
                       "VPC access mode, which stbench does not configure", image_uri)
