"""The Docker engine as every stbench command that needs one sees it (the local adapter, the
local SageMaker endpoint, `images push`, `cleanup`): the connection, the hint for a missing
image, and removing what carries a label."""

from __future__ import annotations

import time
from typing import Any

from stbench.model.errors import UserError

STUDY_LABEL = "stbench.study"  # the experiment tag, on every container and volume of a study
# the experiment's job-name base, on every container and volume of one experiment
EXPERIMENT_LABEL = "stbench.experiment"
OR_LOCAL_PROCESSES = " or use --backend local"  # what a study can do without an engine


def connect(client: Any = None, otherwise: str = "") -> Any:
    """`client` (else the engine the environment names) once it answers; else a one-line
    UserError naming the fix, and `otherwise` what the command could do without Docker."""
    import docker
    from docker.errors import DockerException

    try:
        client = client or docker.from_env()
        client.ping()
    except (DockerException, OSError) as err:  # no engine, no socket, no permission
        raise UserError(
            f"cannot reach the Docker engine ({type(err).__name__}); start it "
            f"(images/docker-up.sh as root){otherwise}"
        ) from None
    return client


def build_hint(image: str) -> str:
    if "stbench-trainer-gpu" in image:
        return "build it with `make build GPU=1` (about 6 GB)"
    return "build it with `make build`"


def remove_labelled(client: Any, label: str, rounds: int = 1) -> tuple[int, int]:
    """Remove every container, then every volume, carrying `label` (`key=value`); with more
    rounds, again whatever appeared or was still in use meanwhile. Returns (removed, left)."""
    from docker.errors import APIError

    filters = {"label": label}
    removed = 0
    for round_ in range(rounds):
        items = [*client.containers.list(all=True, filters=filters),
                 *client.volumes.list(filters=filters)]  # containers first: they hold volumes
        if not items:
            return removed, 0
        if round_:
            time.sleep(1)
        for item in items:
            try:
                item.remove(force=True)
                removed += 1
            except APIError:  # gone already, or a volume still in use
                pass
    left = [*client.containers.list(all=True, filters=filters),
            *client.volumes.list(filters=filters)]
    return removed, len(left)
