"""Docker fixtures: an engine and built images, or a skip (a failure in CI, where they must run)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TRAINER = "stbench-trainer:latest"
ORCHESTRATOR = "stbench-orchestrator:latest"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"Docker test cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[object]:
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as err:  # no engine, no socket, no permission
        _unavailable(f"no Docker engine ({type(err).__name__}); run images/docker-up.sh")
    yield client
    client.close()


@pytest.fixture(scope="session")
def images(docker_client: object) -> dict[str, str]:
    """Both role images; built with images/build.sh when missing (minutes, once)."""
    from docker.errors import ImageNotFound

    missing = []
    for image in (TRAINER, ORCHESTRATOR):
        try:
            docker_client.images.get(image)  # type: ignore[attr-defined]
        except ImageNotFound:
            missing.append(image)
    if missing:
        build = subprocess.run(["bash", str(REPO / "images" / "build.sh")], cwd=REPO,
                               capture_output=True, text=True)
        if build.returncode != 0:
            _unavailable(f"images/build.sh failed: {build.stderr.strip()[-300:]}")
    return {"trainer": TRAINER, "orchestrator": ORCHESTRATOR}
