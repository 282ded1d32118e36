"""The endpoint's jobs on the local Docker engine: one container per job, `IMAGE train`.

SageMaker runs `docker run IMAGE train` on its instance; here each job is such a container
with host networking (it reaches the endpoint on 127.0.0.1), the job's `/opt/ml` folder
bind-mounted and its warm-pool cache as a Docker volume at
`/opt/ml/sagemaker/warmpoolcache`. A warm pool is that volume plus the job's bookkeeping, not
a running container, so a job on a pool may use another image, as on AWS. Every container and
volume carries the label `stbench.emulator=<id>` and is removed when the endpoint stops.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stbench.backends.jobs.docker_engine import connect, remove_labelled
from stbench.model.container_contract import WARMPOOL_CACHE_DIR

LABEL = "stbench.emulator"
LOCAL_REGISTRIES = ("127.0.0.1", "localhost")
DOCKER_POOL_SIZE = 64  # one log stream per running job holds a connection


class ImageUnavailable(Exception):
    """The image is neither in the engine nor in a registry the endpoint can pull from."""


def registry_of(image: str) -> str | None:
    """`127.0.0.1:5000` for `127.0.0.1:5000/stbench-trainer:1`, None for `stbench-trainer:1`."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def _line(line: bytes) -> tuple[int, str]:
    stamp, _, text = line.partition(b" ")
    return _timestamp_ms(stamp), text.decode(errors="replace").rstrip("\r")


def _timestamp_ms(stamp: bytes) -> int:
    """Docker's RFC 3339 log timestamp (nanoseconds, UTC) in epoch milliseconds."""
    text = stamp.decode(errors="replace").rstrip("Z")
    whole, _, fraction = text.partition(".")
    try:
        seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return int(time.time() * 1000)
    return seconds * 1000 + int((fraction + "000")[:3])


class DockerJobs:
    """Containers and volumes of one endpoint."""

    def __init__(self, emulator_id: str, client: Any = None):
        if client is None:
            import docker

            client = docker.from_env(max_pool_size=DOCKER_POOL_SIZE)
        self.client = connect(client)
        self.emulator_id = emulator_id
        self.labels = {LABEL: emulator_id}
        # registry host:port -> the Docker credentials for it: the endpoint's ECR registry,
        # from which every job pulls afresh, as SageMaker pulls from ECR
        self.registry_auth: dict[str, dict[str, str]] = {}

    def image_exists(self, image: str) -> bool:
        """In the engine, or in a registry on this machine (then it is pulled when a job
        starts, in its Downloading phase, as SageMaker pulls it)."""
        from docker.errors import APIError, ImageNotFound

        if auth := self.registry_auth.get(registry_of(image) or ""):
            try:
                self.client.api.inspect_distribution(image, auth_config=auth)
                return True
            except APIError:
                return False
        try:
            self.client.images.get(image)
            return True
        except ImageNotFound:
            pass
        registry = registry_of(image)
        if registry is None or registry.split(":")[0] not in LOCAL_REGISTRIES:
            return False
        try:
            self.client.api.inspect_distribution(image)
            return True
        except APIError:
            return False

    def ensure_image(self, image: str) -> None:
        from docker.errors import APIError, ImageNotFound

        auth = self.registry_auth.get(registry_of(image) or "")
        try:
            if auth is None:
                self.client.images.get(image)
                return
        except ImageNotFound:
            pass
        try:
            self.client.images.pull(image, auth_config=auth)
        except APIError as err:
            raise ImageUnavailable(f"Cannot pull algorithm container {image}: "
                                   f"{err.explanation or err}") from None

    def create_volume(self, job: str) -> str:
        name = f"{self.emulator_id}-cache-{job}"
        self.client.volumes.create(name, labels=self.labels)
        return name

    def remove_volume(self, name: str) -> None:
        from docker.errors import APIError

        try:
            self.client.volumes.get(name).remove(force=True)
        except APIError:  # gone already, or still held by a container being removed
            pass

    def start(self, job: str, algorithm: dict[str, Any], folder: Path, volume: str,
              environment: dict[str, str]) -> Any:
        """`docker run IMAGE train`, or the request's ContainerEntrypoint with its
        ContainerArguments (then without `train`, as SageMaker runs them)."""
        from docker.types import Mount

        entrypoint = algorithm.get("ContainerEntrypoint")
        arguments = algorithm.get("ContainerArguments")
        command = arguments if arguments or entrypoint else ["train"]
        return self.client.containers.run(
            algorithm["TrainingImage"], entrypoint=entrypoint, command=command or None,
            detach=True, network_mode="host",
            name=f"{self.emulator_id}-{job}", labels=self.labels, environment=environment,
            mounts=[Mount("/opt/ml", str(folder), type="bind"),
                    Mount(WARMPOOL_CACHE_DIR, volume, type="volume")])

    def log_lines(self, container: Any) -> Iterator[tuple[int, str]]:
        """(timestamp ms, line) of the container's stdout and stderr until it exits."""
        buffer, sent = b"", 0
        for chunk in container.logs(stream=True, follow=True, timestamps=True):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                sent += 1
                yield _line(line)
        # The followed stream can close before the engine wrote a last line that has no
        # newline (seen when a container exits at once): the whole log, read after the
        # exit, gives what the stream missed.
        container.wait()
        complete = [line for line in container.logs(timestamps=True).split(b"\n") if line.strip()]
        for line in complete[sent:]:
            yield _line(line)

    def signal(self, container: Any, name: str) -> None:
        from docker.errors import APIError

        try:
            container.kill(signal=name)
        except APIError:  # it exited meanwhile
            pass

    def exit_code(self, container: Any) -> int:
        return int(container.wait().get("StatusCode", -1))

    def remove(self, container: Any) -> None:
        from docker.errors import APIError

        try:
            container.remove(force=True)
        except APIError:
            pass

    def remove_all(self) -> tuple[int, int]:
        """Every container, then every volume of this endpoint: (removed, left)."""
        return remove_labelled(self.client, f"{LABEL}={self.emulator_id}", rounds=3)
