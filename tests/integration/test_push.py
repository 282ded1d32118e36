"""`stbench images push`: a real push to a real registry, stream errors, and the ECR flow.

The registry is Debian's `docker-registry` (distribution 2.8) on a free loopback port: the
engine treats 127.0.0.0/8 as an insecure registry by default, so no TLS and no engine
configuration. ECR runs on moto, which is no registry: there a fake docker client records
the login, the tags and the pushes instead.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from conftest import HTTP, free_port
from moto import mock_aws

from stbench.backends.jobs import docker_engine
from stbench.cli.images import cmd_images
from stbench.launch.push import DEFAULT_ROLES as ROLES
from stbench.launch.push import default_tag, ecr_target, local_images, push_images
from stbench.model.errors import UserError

ACCOUNT, REGION = "123456789012", "us-east-1"
ECR = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"


def _unavailable(reason: str) -> None:
    """Skip here, fail in CI (the pattern of conftest.py)."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"push test cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _untag(client: Any, *references: str) -> None:
    """Drop the registry-prefixed tags a push leaves on the engine (never the image)."""
    import docker

    for reference in references:
        try:
            client.images.remove(reference, noprune=True)
        except docker.errors.ImageNotFound:
            pass


def _get(url: str, **headers: str) -> tuple[Any, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers)
    with HTTP.open(request, timeout=10) as response:
        return json.loads(response.read()), dict(response.headers)


@pytest.mark.docker
def test_push_to_a_real_registry(docker_client: Any, images: dict[str, str], registry: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert "127.0.0.0/8" in docker_client.info()["RegistryConfig"]["InsecureRegistryCIDRs"]
    tag = default_tag()
    pushed = [f"{registry}/stbench-{role}:{each}" for role in ROLES for each in (tag, "latest")]
    try:
        started = time.monotonic()
        assert cmd_images(["push", "--registry", registry]) == 0
        seconds = time.monotonic() - started
        out, err = capsys.readouterr()
        assert out.splitlines() == [f"{role:<13s} {registry}/stbench-{role}:{tag}"
                                    for role in ROLES]
        assert "uploaded" in err and "stbench run --backend sagemaker --image" in err
        for role in ROLES:
            listing, _ = _get(f"http://{registry}/v2/stbench-{role}/tags/list")
            assert sorted(listing["tags"]) == sorted([tag, "latest"])
            _, headers = _get(f"http://{registry}/v2/stbench-{role}/manifests/{tag}",
                              Accept="application/vnd.docker.distribution.manifest.v2+json")
            digest = headers["Docker-Content-Digest"]
            local = docker_client.images.get(f"stbench-{role}:{tag}")
            assert f"{registry}/stbench-{role}@{digest}" in local.attrs["RepoDigests"]
        # pull back what was pushed, from the registry, not the local tag
        _untag(docker_client, f"{registry}/stbench-trainer:{tag}")
        pulled = docker_client.images.pull(f"{registry}/stbench-trainer", tag=tag)
        assert pulled.id == docker_client.images.get(f"stbench-trainer:{tag}").id
        with capsys.disabled():
            print(f"\npush of {' and '.join(ROLES)} to {registry}: {seconds:.1f} s")
    finally:
        _untag(docker_client, *pushed)


@pytest.mark.docker
def test_error_in_push_stream_is_one_line(docker_client: Any, images: dict[str, str]) -> None:
    nowhere = f"127.0.0.1:{free_port()}"  # nothing listens: the engine's stream has an error
    try:
        with pytest.raises(UserError) as failure:
            cmd_images(["push", "--registry", nowhere, "--roles", "trainer"])
        message = str(failure.value)
        assert "\n" not in message and "connection refused" in message
        assert message.startswith(f"push of {nowhere}/stbench-trainer:{default_tag()} failed")
    finally:
        _untag(docker_client, f"{nowhere}/stbench-trainer:{default_tag()}")


@pytest.mark.docker
def test_missing_local_image_names_the_fix(docker_client: Any) -> None:
    with pytest.raises(UserError, match=r"^image stbench-trainer:no-such-tag not built: "
                                        r"run `make build`$"):
        cmd_images(["push", "--registry", "127.0.0.1:5000", "--tag", "no-such-tag"])


# --- ECR on moto: a fake docker client stands in for the engine ----------------------------


class FakeImage:
    def __init__(self, engine: FakeDocker, name: str):
        self.engine, self.name = engine, name

    def tag(self, repository: str, tag: str) -> bool:
        self.engine.tags.append((self.name, f"{repository}:{tag}"))
        return True


class FakeDocker:
    """The docker SDK surface the push uses (`images.get`, `login`, `api.push`), recorded."""

    def __init__(self, stream: list[dict[str, Any]] | None = None):
        self.images, self.api = self, self
        self.logins: list[dict[str, Any]] = []
        self.tags: list[tuple[str, str]] = []
        self.pushes: list[tuple[str, dict[str, str] | None]] = []
        self.stream = stream or [
            {"status": "Preparing", "id": "abc123", "progressDetail": {}},
            {"status": "Pushing", "id": "abc123", "progressDetail": {"current": 1, "total": 9}},
            {"status": "Pushed", "id": "abc123", "progressDetail": {}},
            {"progressDetail": {}, "aux": {"Tag": "t", "Digest": "sha256:" + "0" * 64}},
        ]

    def get(self, name: str) -> FakeImage:
        return FakeImage(self, name)

    def login(self, **kwargs: Any) -> dict[str, str]:
        self.logins.append(kwargs)
        return {"Status": "Login Succeeded"}

    def push(self, repository: str, tag: str, stream: bool, decode: bool,
             auth_config: dict[str, str] | None) -> Iterator[dict[str, Any]]:
        assert stream and decode
        self.pushes.append((f"{repository}:{tag}", auth_config))
        return iter(self.stream)

    def close(self) -> None:
        pass


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials and a mocked AWS: nothing here can reach the real one."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


def test_ecr_repositories_created_once_and_token_used(aws: None) -> None:
    session = boto3.session.Session(region_name=REGION)
    calls: list[str] = []
    session.events.register("before-call.ecr.*",
                            lambda model, **_: calls.append(model.name))
    client, messages = FakeDocker(), []
    auth = {"username": "AWS", "password": f"{ACCOUNT}-auth-token"}  # moto's token, decoded
    expected = [(f"{ECR}/stbench-{role}:{each}", auth)
                for role in ROLES for each in ("0.1.0-abc1234", "latest")]

    for attempt in (1, 2):
        client.pushes.clear()
        target = ecr_target(session, client, ROLES, messages.append)
        images = local_images(client, ROLES, "0.1.0-abc1234")
        pushed = push_images(client, target, images, "0.1.0-abc1234", messages.append)
        assert client.pushes == expected, attempt
        assert [p.uri for p in pushed] == [f"{ECR}/stbench-{role}:0.1.0-abc1234" for role in ROLES]

    assert calls.count("CreateRepository") == 2  # first attempt only
    assert calls.count("DescribeRepositories") == 4
    assert calls.count("GetAuthorizationToken") == 2
    assert [m for m in messages if m.startswith("created")] == [
        f"created ECR repository stbench-{role} in {REGION}" for role in ROLES]
    assert client.logins == 2 * [{**auth, "registry": f"https://{ECR}", "reauth": True}]
    assert client.tags[:2] == [("stbench-trainer:0.1.0-abc1234", f"{ECR}/stbench-trainer:{t}")
                               for t in ("0.1.0-abc1234", "latest")]
    names = {r["repositoryName"] for r in
             session.client("ecr").describe_repositories()["repositories"]}
    assert names == {f"stbench-{role}" for role in ROLES}


def test_cli_pushes_to_ecr_and_prints_the_uris(aws: None, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeDocker()
    monkeypatch.setattr(docker_engine, "connect", lambda *a, **k: client)
    assert cmd_images(["push", "--roles", "trainer", "--tag", "9.9.9-feed"]) == 0
    assert capsys.readouterr().out == f"trainer       {ECR}/stbench-trainer:9.9.9-feed\n"
    assert [uri for uri, _ in client.pushes] == [f"{ECR}/stbench-trainer:9.9.9-feed",
                                                 f"{ECR}/stbench-trainer:latest"]


def test_error_mid_stream_stops_the_push(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    client = FakeDocker(stream=[
        {"status": "Pushing", "id": "abc123", "progressDetail": {"current": 1, "total": 9}},
        {"errorDetail": {"message": "denied: not\nauthorized"}, "error": "denied: not\nauthorized"},
        {"progressDetail": {}, "aux": {"Digest": "sha256:" + "0" * 64}},
    ])
    monkeypatch.setattr(docker_engine, "connect", lambda *a, **k: client)
    with pytest.raises(UserError) as failure:
        cmd_images(["push", "--tag", "t"])
    message = str(failure.value)
    assert message.startswith(f"push of {ECR}/stbench-trainer:t failed: denied: not authorized;")
    assert "ecr:PutImage" in message and "\n" not in message
    assert len(client.pushes) == 1  # nothing after the first failure


@pytest.mark.parametrize("unset, fix", [
    ("AWS_DEFAULT_REGION", "no AWS region: pass --region or set AWS_DEFAULT_REGION"),
    ("AWS_ACCESS_KEY_ID", "no AWS credentials: run `aws configure` or set AWS_PROFILE"),
])
def test_missing_region_or_credentials_name_the_fix(aws: None, monkeypatch: pytest.MonkeyPatch,
                                                    unset: str, fix: str) -> None:
    monkeypatch.delenv(unset)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-role lookup
    monkeypatch.setattr(docker_engine, "connect", lambda *a, **k: FakeDocker())
    with pytest.raises(UserError, match=f"^{fix}"):
        cmd_images(["push", "--tag", "t"])
