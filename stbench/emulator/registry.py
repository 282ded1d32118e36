"""The endpoint's image registry: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1.

ECR is a Docker registry with an AWS API beside it; moto has the API but no registry, so the
endpoint starts a real one that `docker push` and `docker pull` speak to. It stores in a temp
folder of its own and asks for a password (htpasswd, user `AWS`, as ECR's tokens decode to
`AWS:<password>`), so a pull without GetAuthorizationToken's token fails as it does on ECR.
Its storage is read directly for what the ECR API reports (tags, digests, sizes, push times):
the registry's HTTP API has no listing of untagged manifests and no push times.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stbench.model.errors import UserError

BINARIES = ("docker-registry", "registry")  # Debian's name, then upstream's
USERNAME = "AWS"
START_SECONDS = 20.0
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
TAG = re.compile(r"^[\w][\w.-]{0,127}$")  # Docker's tag grammar
LIST_TYPES = ("application/vnd.docker.distribution.manifest.list.v2+json",
              "application/vnd.oci.image.index.v1+json")
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Manifest:
    """One manifest the registry holds: what DescribeImages and BatchGetImage report."""

    digest: str
    body: bytes
    media_type: str
    artifact_media_type: str | None
    size: int  # compressed layer bytes (for a list: its largest manifest), as ECR counts
    pushed_at: float  # epoch seconds the manifest was first stored


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _binary() -> str:
    for name in BINARIES:
        if found := shutil.which(name):
            return found
    raise UserError("the endpoint's ECR needs a Docker registry binary (Debian's "
                    "docker-registry): apt-get install docker-registry")


class Registry:
    """A `docker-registry` process on `host:port` (a free port) with a password of its own."""

    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self.password = secrets.token_urlsafe(24)
        self._folder: Path | None = None  # config, htpasswd, log and storage, once started
        self.address = ""  # host:port once started
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def auth(self) -> dict[str, str]:
        """What the Docker engine needs to push and pull here (the decoded ECR token)."""
        return {"username": USERNAME, "password": self.password}

    def start(self) -> Registry:
        """Start the process on a free port; a port taken meanwhile is retried on another."""
        import bcrypt

        binary = _binary()  # before anything is made: a missing binary leaves nothing
        self._folder = Path(tempfile.mkdtemp(prefix="stbench-emulator-registry-"))
        # cost 4: the registry checks the hash on every request of a push; the password is
        # random and the registry serves 127.0.0.1 only
        hashed = bcrypt.hashpw(self.password.encode(), bcrypt.gensalt(rounds=4)).decode()
        (self.folder / "htpasswd").write_text(f"{USERNAME}:{hashed}\n")
        for _ in range(3):
            address = f"{self.host}:{_free_port(self.host)}"
            if self._serve(binary, address):
                self.address = address
                return self
        tail = (self.folder / "registry.log").read_text(errors="replace")[-300:]
        self.close()
        raise UserError(f"the endpoint's registry ({binary}) did not start: {tail.strip()}")

    def _serve(self, binary: str, address: str) -> bool:
        config = self.folder / "config.yml"
        config.write_text(json.dumps({  # YAML is a superset of JSON
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.root)},
                        "delete": {"enabled": True}},
            "http": {"addr": address, "secret": secrets.token_hex(16)},
            "auth": {"htpasswd": {"realm": "stbench-emulator-ecr",
                                  "path": str(self.folder / "htpasswd")}},
        }))
        log = (self.folder / "registry.log").open("ab")
        self._process = subprocess.Popen([binary, "serve", str(config)], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline and self._process.poll() is None:
            try:
                NO_PROXY.open(f"http://{address}/v2/", timeout=1).close()
                return True
            except urllib.error.HTTPError:  # 401: up, and asking for the password
                return True
            except OSError:
                time.sleep(0.05)
        self._stop()
        return False

    def _stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def close(self, engine: Any = None) -> None:
        """Stop the process and remove its storage (every pushed image), and the tags naming
        this registry from the Docker `engine` (a push's and a job's pull): the port is not
        this registry's any more, so those names would point nowhere."""
        self._stop()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
        if engine is None or not self.address:
            return
        from docker.errors import APIError

        for image in engine.images.list():
            for tag in image.tags:
                if tag.startswith(f"{self.address}/"):
                    try:
                        engine.images.remove(tag, noprune=True)
                    except APIError:  # removed meanwhile
                        pass

    # --- what the registry holds, read from its storage ------------------------------------

    def repository_folder(self, name: str) -> Path:
        """Where the registry keeps a repository's tags and manifests (not its layers)."""
        return self.root / "docker" / "registry" / "v2" / "repositories" / name

    @property
    def folder(self) -> Path:
        if self._folder is None:
            raise RuntimeError("the registry is not started")
        return self._folder

    @property
    def root(self) -> Path:
        return self.folder / "data"

    def _repository(self, name: str) -> Path:
        return self.repository_folder(name) / "_manifests"

    def _blob(self, digest: str) -> Path:
        hexa = digest.removeprefix("sha256:")
        return self.root / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexa[:2] / hexa \
            / "data"

    def tags(self, repository: str) -> dict[str, str]:
        """Tag -> manifest digest."""
        found = {}
        folder = self._repository(repository) / "tags"
        for path in sorted(folder.glob("*/current/link")) if folder.is_dir() else []:
            digest = path.read_text().strip()
            if DIGEST.match(digest):
                found[path.parent.parent.name] = digest
        return found

    def digests(self, repository: str) -> list[str]:
        """Every manifest digest of the repository, oldest push first."""
        folder = self._repository(repository) / "revisions" / "sha256"
        links = [(path.stat().st_mtime, path.parent.name) for path in
                 (folder.glob("*/link") if folder.is_dir() else [])]
        return [f"sha256:{hexa}" for _, hexa in sorted(links)]

    def manifest(self, repository: str, digest: str) -> Manifest | None:
        link = self._repository(repository) / "revisions" / "sha256" / \
            digest.removeprefix("sha256:") / "link"
        if not DIGEST.match(digest) or not link.is_file():
            return None
        try:
            body = self._blob(digest).read_bytes()
            document: dict[str, Any] = json.loads(body)
        except (OSError, ValueError):
            return None
        media_type = str(document.get("mediaType") or "application/vnd.oci.image.manifest.v1+json")
        if media_type in LIST_TYPES:
            parts = [self.manifest(repository, str(each.get("digest")))
                     for each in document.get("manifests", [])]
            size = max((part.size for part in parts if part), default=0)
            artifact = None
        else:
            size = sum(int(layer.get("size", 0)) for layer in document.get("layers", []))
            artifact = (document.get("config") or {}).get("mediaType")
        return Manifest(digest, body, media_type, artifact, size, link.stat().st_mtime)
