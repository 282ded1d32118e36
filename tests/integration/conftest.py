"""Docker fixtures: an engine and built images, or a skip (a failure in CI, where they must run)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TRAINER = "stbench-trainer:latest"
ORCHESTRATOR = "stbench-orchestrator:latest"
REGISTRY_BINARY = "/usr/bin/docker-registry"
# urllib would send 127.0.0.1 traffic to an http_proxy from the environment
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


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
    """Both role images, rebuilt from the working tree (seconds when nothing changed), so the
    tests never run stale code; the first build takes minutes."""
    build = subprocess.run(["bash", str(REPO / "images" / "build.sh")], cwd=REPO,
                           capture_output=True, text=True)
    if build.returncode != 0:
        _unavailable(f"images/build.sh failed: {build.stderr.strip()[-300:]}")
    return {"trainer": TRAINER, "orchestrator": ORCHESTRATOR}


# --- a real registry (Debian's docker-registry, distribution 2.8) on a free loopback port ---


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _install_registry() -> None:
    """Debian's docker-registry, installed the first time (its service is not started)."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        _unavailable("no /usr/bin/docker-registry: run `apt-get install docker-registry` as root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "docker-registry"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        result = subprocess.run(install, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            _unavailable(f"apt-get install docker-registry failed: {result.stderr[-300:]}")


@pytest.fixture(scope="session")
def registry(docker_client: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real registry on 127.0.0.1:<free port> (not 5000: concurrent sessions and Debian's
    own service may hold it), storing in a temp folder; stopped at the end."""
    if not Path(REGISTRY_BINARY).exists():
        _install_registry()
    root = tmp_path_factory.mktemp("registry")
    address = f"127.0.0.1:{free_port()}"
    config = root / "config.yml"
    config.write_text(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
                      f"    rootdirectory: {root / 'data'}\nhttp:\n  addr: {address}\n")
    log = (root / "registry.log").open("w")
    process = subprocess.Popen([REGISTRY_BINARY, "serve", str(config)], stdout=log,
                               stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:
        try:
            HTTP.open(f"http://{address}/v2/", timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                tail = (root / "registry.log").read_text()[-300:]
                _unavailable(f"docker-registry did not serve on {address}: {tail}")
            time.sleep(0.1)
    yield address
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


# --- pytest-docker: compose services run once per session, detached; tests wait on them ----


@pytest.fixture(scope="session")
def compose_paths() -> dict[str, Path]:
    """Host folders the compose services mount, with a trial's hyperparameters laid out."""
    root = Path(tempfile.mkdtemp(prefix="stbench-compose-"))
    paths = {"results": root / "results", "opt_ml": root / "opt_ml", "metrics": root / "metrics"}
    for path in paths.values():
        path.mkdir()
    config = paths["opt_ml"] / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps({
        "stbench_benchmark": "synthetic_curves", "x": "0.5", "log_lr": "-2.5", "width": "16",
        "epochs": "4", "epoch_duration": "0.05",
    }))
    os.environ["STBENCH_TEST_RESULTS"] = str(paths["results"])
    os.environ["STBENCH_TEST_OPT_ML"] = str(paths["opt_ml"])
    os.environ["STBENCH_TEST_METRICS"] = str(paths["metrics"])
    return paths


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    return str(REPO / "tests" / "integration" / "compose.yaml")


@pytest.fixture(scope="session")
def docker_setup() -> list[str]:
    return ["up -d"]  # the services are one-shot jobs: the tests wait for them to exit


@pytest.fixture(scope="session")
def compose_services(images: dict[str, str], compose_paths: dict[str, Path],
                     docker_services: object, docker_compose_project_name: str) -> dict:
    """The compose project's containers by service name, once they have all exited."""
    import docker

    client = docker.from_env()
    label = f"com.docker.compose.project={docker_compose_project_name}"
    containers = {c.labels["com.docker.compose.service"]: c
                  for c in client.containers.list(all=True, filters={"label": label})}
    for container in containers.values():
        container.wait(timeout=180)
    return containers


# --- AWS: moto only ---------------------------------------------------------------------------

AWS_ENV = [
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
    "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
]


@pytest.fixture
def isolated_aws_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No real profile, key or instance metadata can leak in: empty config files, no env."""
    for name in AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, file in [("AWS_CONFIG_FILE", "config"), ("AWS_SHARED_CREDENTIALS_FILE", "creds")]:
        (tmp_path / file).write_text("")
        monkeypatch.setenv(name, str(tmp_path / file))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
