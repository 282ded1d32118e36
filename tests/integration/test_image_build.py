"""`make build` where users are: no Python on the host, linux/amd64 images whatever the host,
pip inside `docker build` with the host's index and CA certificate (kept out of the image),
and the host-built wheelhouse as the offline fallback.

Each build here has a tag of its own (IMAGE_TAG), so the `latest` images other tests use are
left as they are, and reuses the layer cache of the session's build (seconds)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port

REPO = Path(__file__).resolve().parents[2]
ROLES = ("runtime", "orchestrator-runtime", "trainer", "orchestrator")


def build(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(REPO / "images" / "build.sh")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=1200)


def inspect(reference: str, template: str) -> str:
    return subprocess.run(["docker", "image", "inspect", "-f", template, reference],
                          capture_output=True, text=True, check=True).stdout.strip()


def layers(reference: str) -> list[str]:
    return json.loads(inspect(reference, "{{json .RootFS.Layers}}"))


@pytest.fixture
def tag() -> Iterator[str]:
    """A tag of this test's own; its images are untagged afterwards (layers stay cached)."""
    name = f"test-build-{uuid.uuid4().hex[:8]}"
    yield name
    for role in ROLES:
        subprocess.run(["docker", "image", "rm", "--no-prune", f"stbench-{role}:{name}"],
                       capture_output=True)


def no_python_path(folder: Path, docker_log: Path) -> str:
    """A PATH with every command of this one but Python and pip, and a `docker` that records
    its arguments before running the real one."""
    folder.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        if not Path(directory).is_dir():
            continue
        for entry in sorted(Path(directory).iterdir()):
            name = entry.name
            if name.startswith(("python", "pip")) or os.path.lexists(folder / name):
                continue
            if entry.is_file() and os.access(entry, os.X_OK):
                (folder / name).symlink_to(entry)
    docker = shutil.which("docker")
    assert docker
    (folder / "docker").unlink()
    (folder / "docker").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {docker_log}\n'
                                   f'exec {docker} "$@"\n')
    (folder / "docker").chmod(0o755)
    return str(folder)


@pytest.mark.docker
def test_build_on_a_host_without_python(images: dict[str, str], tag: str,
                                        tmp_path: Path) -> None:
    docker_log = tmp_path / "docker-args.log"
    env = {**os.environ, "PATH": no_python_path(tmp_path / "bin", docker_log),
           "IMAGE_TAG": tag}
    for command in ("python3", "python", "pip3", "pip"):
        assert shutil.which(command, path=env["PATH"]) is None
    session_conf = (REPO / "build" / "image-pip" / "pip.conf").read_text()

    result = build(env)

    assert result.returncode == 0, result.stderr[-3000:]
    builds = [line for line in docker_log.read_text().splitlines() if line.startswith("build ")]
    assert len(builds) == len(ROLES)
    assert all("--platform linux/amd64" in line for line in builds), builds
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    for role in ROLES:
        assert inspect(f"stbench-{role}:{tag}", "{{.Os}}/{{.Architecture}}") == "linux/amd64"
        assert inspect(f"stbench-{role}:{tag}",
                       '{{index .Config.Labels "org.opencontainers.image.version"}}') == version
    for image in images.values():
        assert inspect(image, "{{.Os}}/{{.Architecture}}") == "linux/amd64"
    # Without `pip config list` only the PIP_* variables carry settings; where they say the
    # same as pip's configuration did for the session's build, every layer below stbench's
    # own (the base, the user, the dependencies' venv) comes from the layer cache unchanged.
    if (REPO / "build" / "image-pip" / "pip.conf").read_text() == session_conf:
        assert layers(f"stbench-trainer:{tag}")[:-1] == layers(images["trainer"])[:-1]


def files_by_layer(reference: str) -> tuple[list[str], Iterator[tuple[str, str, bytes]]]:
    """`docker save`'s (layer, file name, data) for every regular file, streamed; the layer
    order comes with manifest.json, read last."""
    order: list[str] = []

    def stream() -> Iterator[tuple[str, str, bytes]]:
        save = subprocess.Popen(["docker", "save", reference], stdout=subprocess.PIPE)
        assert save.stdout is not None
        with tarfile.open(fileobj=save.stdout, mode="r|") as outer:
            for member in outer:
                handle = outer.extractfile(member) if member.isfile() else None
                if handle is None:
                    continue
                if member.name == "manifest.json":
                    order.extend(json.loads(handle.read())[0]["Layers"])
                elif member.name.endswith("layer.tar"):
                    with tarfile.open(fileobj=handle, mode="r|") as layer:
                        for item in layer:
                            data = layer.extractfile(item) if item.isfile() else None
                            if data is not None:
                                yield member.name, item.name, data.read()
        assert save.wait() == 0

    return order, stream()


@pytest.mark.docker
def test_pip_settings_and_ca_stay_out_of_the_image(images: dict[str, str]) -> None:
    conf = (REPO / "build" / "image-pip" / "pip.conf").read_text()
    ca = REPO / "build" / "image-pip" / "ca.crt"
    if not ca.exists():
        pytest.skip("no CA certificate set on this host (PIP_CERT, pip's cert, "
                    "REQUESTS_CA_BUNDLE, SSL_CERT_FILE)")
    assert "cert = /pip/ca.crt" in conf
    needle = ca.read_bytes()
    order, files = files_by_layer(images["trainer"])
    found: dict[str, list[str]] = {}
    for layer, name, data in files:
        if (needle in data or b"cert = /pip/ca.crt" in data
                or name.startswith(("pip/", "build/"))):
            found.setdefault(layer, []).append(name)
    base = os.environ.get("BASE_IMAGE", "python:3.11-slim")
    own = order[len(layers(base)):]  # what the image adds to its base
    assert len(own) >= 3  # the user, the dependencies' venv, stbench
    assert {layer: names for layer, names in found.items() if layer in own} == {}


def distributions(image: str) -> set[str]:
    listing = subprocess.run(["docker", "run", "--rm", "--entrypoint", "pip", image, "list",
                              "--format", "freeze"], capture_output=True, text=True, check=True)
    return {line.split("==")[0].lower() for line in listing.stdout.split()}


@pytest.mark.docker
@pytest.mark.slow
def test_offline_fallback_to_the_host_wheelhouse(images: dict[str, str], tag: str) -> None:
    """WHEELHOUSE=1 installs from the host-built wheelhouse; with an index the build cannot
    reach, build.sh says so in one line and does the same by itself."""
    probe = subprocess.run(["python3", "-c", "import platform, sys; print(sys.version_info[:2] "
                            "== (3, 11) and platform.machine() == 'x86_64')"],
                           capture_output=True, text=True)
    if probe.stdout.strip() != "True":
        pytest.skip("the wheelhouse fallback needs CPython 3.11 on linux x86_64")
    explicit = build({**os.environ, "WHEELHOUSE": "1", "IMAGE_TAG": tag})
    assert explicit.returncode == 0, explicit.stderr[-3000:]
    assert "the host-built wheelhouse build/wheelhouse (no index)" in explicit.stderr
    offline_layers = layers(f"stbench-trainer:{tag}")

    nowhere = f"http://127.0.0.1:{free_port()}/simple"  # nothing listens there
    automatic = build({**os.environ, "PIP_INDEX_URL": nowhere, "IMAGE_TAG": tag})

    assert automatic.returncode == 0, automatic.stderr[-3000:]
    said = [line for line in automatic.stderr.splitlines() if "falling back" in line]
    assert said == ["build: pip inside docker build cannot reach a package index ([Errno 111] "
                    "Connection refused); falling back to the host-built wheelhouse "
                    "(images/wheelhouse.sh)"]
    # the same layers from the cache (all but stbench's own, which follows edits to stbench/)
    assert layers(f"stbench-trainer:{tag}")[:-1] == offline_layers[:-1]
    assert distributions(f"stbench-trainer:{tag}") == distributions(images["trainer"])


@pytest.mark.parametrize("setting, said", [
    ({"IMAGE_TAG": "my tag"}, "build: IMAGE_TAG='my tag' is not a Docker tag: use at most 128 "
     "letters, digits, '_', '.' and '-', not starting with '.' or '-'"),
    ({"WHEELHOUSE": "yes"}, "build: WHEELHOUSE=yes: use 1 (the offline wheelhouse), 0 (never) "
     "or leave it unset"),
])
def test_bad_setting_is_one_line(setting: dict[str, str], said: str) -> None:
    result = build({**os.environ, **setting})
    assert (result.returncode, result.stderr.strip(), result.stdout) == (2, said, "")
