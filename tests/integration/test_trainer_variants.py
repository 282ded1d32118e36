"""One --image names every variant's trainer on the Docker back-end too: a benchmark with
`image: gpu` (resnet_cifar10) runs in the `-gpu` sibling of a given stbench-trainer image,
and a missing sibling is one line naming it, before any container or folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from stbench.cli.main import main

pytestmark = pytest.mark.docker


def test_docker_backend_runs_a_gpu_benchmark_in_the_gpu_sibling_of_the_given_image(
        docker_client: Any, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tag = f"variants-{os.getpid()}"
    present = [image for image in docker_client.images.list() if image.tags]
    if not present:
        pytest.skip("no image on the engine to stand for a CPU trainer")
    cpu_trainer = f"stbench-trainer:{tag}"  # exists: only the GPU sibling is missing
    present[0].tag("stbench-trainer", tag)
    try:
        code = main(["run", "--backend", "docker", "--benchmark", "resnet_cifar10", "--method",
                     "RS", "--image", cpu_trainer, "--max_wallclock_time", "5",
                     "--experiment_tag", "variants", "--results_root", str(tmp_path / "r")])
    finally:
        docker_client.images.remove(cpu_trainer)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"image stbench-trainer-gpu:{tag} not found" in err and "GPU=1" in err
    assert not (tmp_path / "r").exists()
