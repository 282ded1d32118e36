"""Push the role images to a registry, where SageMaker (or another machine) can pull them.

Without a registry: ECR of the current AWS account and region, with the repositories created
on first use and a `GetAuthorizationToken` login. With one: that registry, no AWS calls.
The docker SDK reports push failures inside the progress stream and never raises for them,
so every stream item is checked here and the first error ends the push as a `UserError`.
"""

from __future__ import annotations

import base64
import re
import subprocess
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import docker
import requests
from botocore import exceptions as aws

from stbench import __version__
from stbench.backends.aws import DENIED, check_credentials, credential_errors, error_code, one_line
from stbench.backends.jobs.sagemaker_checks import CLIENT_CONFIG
from stbench.model.errors import UserError

ROLES = ("trainer", "orchestrator", "trainer-gpu")
DEFAULT_ROLES = ("trainer", "orchestrator")  # plus trainer-gpu when `make build GPU=1` made it
# HOST[:PORT][/path]: what may precede `/stbench-<role>` in an image reference.
REGISTRY = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9.-]*(?::\d{1,5})?(?:/[a-z0-9]+(?:[._/-][a-z0-9]+)*)?$"
)
ECR_PUSH_FIX = ("your AWS credentials need the ECR push actions (ecr:InitiateLayerUpload, "
                "ecr:UploadLayerPart, ecr:CompleteLayerUpload, ecr:PutImage)")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Target:
    """Where the images go, the credentials sent with each push, and the fix for a failure."""

    registry: str  # HOST[:PORT][/path], no scheme
    auth: dict[str, str] | None = None  # None: whatever `docker login` stored for the engine
    fix: str = "check that the registry runs and accepts your pushes (`docker login HOST`)"


@dataclass(frozen=True)
class Pushed:
    role: str
    uri: str  # REGISTRY/stbench-ROLE:TAG, what `stbench run --image` takes
    digest: str


def default_tag() -> str:
    """The tag images/build.sh gives this checkout's images: `<version>-<git sha>`, so a push
    never ships images built from other code (`nogit` outside a git checkout, as build.sh)."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True, timeout=10,
                             cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}-{sha or 'nogit'}"


def local_images(client: Any, roles: Iterable[str], tag: str) -> dict[str, Any]:
    """Every role's local image, checked before any AWS call or push."""
    found = {}
    for role in roles:
        name = f"stbench-{role}:{tag}"
        try:
            found[role] = client.images.get(name)
        except docker.errors.ImageNotFound:
            raise UserError(f"image {name} not built: run `make build`") from None
    return found


def default_roles(client: Any, tag: str) -> list[str]:
    """The CPU role images, and the GPU trainer when it was built for this tag."""
    try:
        client.images.get(f"stbench-trainer-gpu:{tag}")
    except docker.errors.ImageNotFound:
        return list(DEFAULT_ROLES)
    return [*DEFAULT_ROLES, "trainer-gpu"]


def registry_target(registry: str) -> Target:
    """A registry named by the user: used as given, with the engine's own credentials."""
    host = registry.strip().removeprefix("https://").removeprefix("http://").rstrip("/")
    if not REGISTRY.match(host):
        raise UserError(f"--registry {registry!r} is not HOST[:PORT][/path] (e.g. 127.0.0.1:5000)")
    return Target(host, fix=f"check that {host} runs and accepts your pushes "
                            f"(`docker login {host.split('/')[0]}`)")


def ecr_target(session: boto3.session.Session, client: Any, roles: Iterable[str],
               progress: Progress) -> Target:
    """ECR of the session's account and region: repositories found or created, engine logged in."""
    region = check_credentials(session, "or push elsewhere with --registry HOST[:PORT]")
    ecr = session.client("ecr", region_name=region, config=CLIENT_CONFIG)
    with _ecr_errors(region):
        for role in roles:
            if ensure_repository(ecr, f"stbench-{role}"):
                progress(f"created ECR repository stbench-{role} in {region}")
        data = ecr.get_authorization_token()["authorizationData"][0]
    username, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
    endpoint = data["proxyEndpoint"]
    try:  # reauth: a token cached in ~/.docker/config.json may have expired (12 h)
        client.login(username=username, password=password, registry=endpoint, reauth=True)
    except docker.errors.DockerException as err:
        raise UserError(f"docker login to {endpoint} failed: {_line(err)}; "
                        "check the Docker engine's network access to ECR") from err
    registry = endpoint.removeprefix("https://").removeprefix("http://").rstrip("/")
    return Target(registry, {"username": username, "password": password}, ECR_PUSH_FIX)


def ensure_repository(ecr: Any, name: str) -> bool:
    """Find or create one ECR repository; True when it was created now."""
    try:
        ecr.describe_repositories(repositoryNames=[name])
        return False
    except aws.ClientError as err:
        if error_code(err) != "RepositoryNotFoundException":
            raise
    try:
        ecr.create_repository(repositoryName=name)
        return True
    except aws.ClientError as err:
        if error_code(err) != "RepositoryAlreadyExistsException":  # a concurrent push made it
            raise
        return False


def push_images(client: Any, target: Target, images: dict[str, Any], tag: str,
                progress: Progress) -> list[Pushed]:
    """Tag each role image as REGISTRY/stbench-ROLE:TAG and :latest, and push both."""
    pushed = []
    for role, image in images.items():
        repository = f"{target.registry}/stbench-{role}"
        digests = []
        for each in (tag, "latest"):
            try:
                image.tag(repository, each)
            except docker.errors.DockerException as err:
                raise UserError(f"cannot tag {repository}:{each}: {_line(err)}") from err
            digests.append(push_tag(client, repository, each, target, progress))
        pushed.append(Pushed(role, f"{repository}:{tag}", digests[0]))
    return pushed


def push_tag(client: Any, repository: str, tag: str, target: Target, progress: Progress) -> str:
    """Push one tag, one progress line per layer status change; returns the manifest digest."""
    ref = f"{repository}:{tag}"
    progress(f"push {ref}")
    try:
        stream = client.api.push(repository, tag, stream=True, decode=True,
                                 auth_config=target.auth)
        return follow_push(stream, ref, target, progress)
    except (docker.errors.DockerException, requests.exceptions.RequestException) as err:
        raise UserError(f"push of {ref} failed: {_line(err)}; {target.fix}") from err


def follow_push(stream: Iterable[dict[str, Any]], ref: str, target: Target,
                progress: Progress) -> str:
    """Read the engine's push stream to its end; the first error item raises `UserError`.

    Uploads (and retries) get a line as they start and end, layers the registry already has
    only count in the summary line."""
    states: dict[str, str] = {}
    sizes: dict[str, int] = {}
    digest = ""
    for item in stream:
        if "error" in item or "errorDetail" in item:
            message = item.get("error") or (item.get("errorDetail") or {}).get("message")
            raise UserError(f"push of {ref} failed: {_line(message or item)}; {target.fix}")
        aux = item.get("aux")
        if isinstance(aux, dict) and aux.get("Digest"):
            digest = str(aux["Digest"])
        layer, status = item.get("id"), str(item.get("status", ""))
        total = (item.get("progressDetail") or {}).get("total")
        if layer and total:
            sizes[layer] = int(total)
        if not layer or states.get(layer) == status:
            continue
        states[layer] = status
        if status in ("Pushing", "Pushed") or status.startswith("Retrying"):
            size = f" ({sizes[layer] / 1e6:.1f} MB)" if layer in sizes else ""
            progress(f"  {layer}: {status}{size}")
    if not digest:
        raise UserError(f"push of {ref} ended without a manifest digest: the engine stopped "
                        "answering; retry the push")
    uploaded = sum(size for layer, size in sizes.items() if states.get(layer) == "Pushed")
    fresh = sum(status == "Pushed" for status in states.values())
    progress(f"  {len(states)} layers: {fresh} uploaded ({uploaded / 1e6:.1f} MB), "
             f"{len(states) - fresh} already there; digest {digest}")
    return digest


@contextmanager
def _ecr_errors(region: str) -> Iterator[None]:
    """AWS failures as one line that names the fix."""
    try:
        with credential_errors():
            yield
    except aws.EndpointConnectionError as err:
        raise UserError(f"cannot reach ECR in region {region}: check --region and your "
                        "network") from err
    except aws.ClientError as err:
        code, action = error_code(err), f"ecr:{err.operation_name}"
        if code in DENIED:
            raise UserError(f"no permission for {action} in {region}: grant it to your "
                            "credentials, or push elsewhere with --registry") from err
        raise UserError(f"{action} failed in {region}: {_line(err)}") from err
    except aws.BotoCoreError as err:
        raise UserError(f"ECR call failed in {region}: {_line(err)}") from err


def _line(value: object, limit: int = 400) -> str:
    """Any message on one line, short enough for a terminal."""
    text = one_line(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
