"""The orchestrator image holds only what the orchestrator loads (images/slim.py): every
method still runs a study in it, `docker run stbench-orchestrator --method ASHA` runs one to
its table, and the trainer image keeps every dependency (user scripts may import any)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run(image: str, *args: str, entrypoint: str | None = None,
        volume: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    command = ["docker", "run", "--rm", "--network", "host"]
    if entrypoint:
        command += ["--entrypoint", entrypoint]
    if volume:
        command += ["-v", f"{volume}:/results"]
    return subprocess.run([*command, image, *args], capture_output=True, text=True,
                          timeout=timeout)


def methods(image: str) -> list[str]:
    listing = run(image, "methods", entrypoint="stbench")
    assert listing.returncode == 0, listing.stderr
    return [line.split()[0] for line in listing.stdout.splitlines() if line.strip()]


@pytest.mark.docker
@pytest.mark.slow
def test_every_method_runs_a_study_in_the_orchestrator_image(images: dict[str, str],
                                                             tmp_path: Path) -> None:
    """Simulated time: enough trials (tens) for every searcher to fit its model (GP, KDE,
    BORE's classifier, CQR's quantile regression) in about a minute."""
    names = methods(images["orchestrator"])
    assert {"ASHA", "BO", "TPE", "BORE", "CQR", "BOHB", "MOBSTER"} <= set(names)
    tmp_path.chmod(0o777)
    done = run(images["orchestrator"], "--backend", "simulated", "--benchmark",
               "synthetic_curves", "--method", *names, "--max_wallclock_time", "10",
               "--jobs", "1", "--experiment_tag", "every", volume=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    for name in names:
        folder = tmp_path / "every" / "synthetic_curves" / name / "0"
        assert json.loads((folder / "metadata.json").read_text())["status"] == "completed"
        assert len((folder / "results.jsonl").read_text().splitlines()) >= 10, name
    plots = re.findall(r"^plot: /results/(\S+)$", done.stdout, re.MULTILINE)
    assert plots and all((tmp_path / plot).stat().st_size > 1000 for plot in plots)


@pytest.mark.docker
@pytest.mark.slow
def test_docker_run_orchestrator_runs_a_study_to_its_table(images: dict[str, str],
                                                           tmp_path: Path) -> None:
    """The image's default: mlp_digits, trials as processes in the same container."""
    tmp_path.chmod(0o777)
    done = run(images["orchestrator"], "--method", "ASHA", "--max_wallclock_time", "8",
               volume=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert re.search(r"^\s*ASHA\s+\S+", done.stdout, re.MULTILINE), done.stdout[-2000:]
    assert "mlp_digits" in done.stdout


@pytest.mark.docker
def test_orchestrator_image_creates_every_aws_client_stbench_names(
        images: dict[str, str]) -> None:
    """botocore keeps the API models of the services stbench's code creates clients for."""
    names = sorted({match for path in (REPO / "stbench").rglob("*.py")
                    if "emulator" not in path.parts
                    for match in re.findall(r"client\(\s*\"([a-z0-9-]+)\"",
                                            path.read_text())})
    assert {"sagemaker", "s3", "logs"} <= set(names)
    code = ("import boto3, sys\n"
            "for name in sys.argv[1:]:\n"
            "    boto3.client(name, region_name='us-east-1', aws_access_key_id='k',\n"
            "                 aws_secret_access_key='s')\n")
    done = run(images["orchestrator"], "-c", code, *names, entrypoint="python")
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.docker
def test_trainer_keeps_every_dependency(images: dict[str, str]) -> None:
    """What the orchestrator image leaves out is one layer of the trainer, on the shared
    dependency layer: pip finds every requirement, and the modules import."""
    check = run(images["trainer"], "check", entrypoint="pip")
    assert check.returncode == 0, check.stdout + check.stderr
    code = ("import xgboost, statsmodels.api, fontTools.subset, sklearn, hf_xet, boto3\n"
            "import matplotlib.backends.backend_pdf\n"
            "from PIL import features\n"
            "assert features.check('webp'), 'no WebP'\n"
            "boto3.client('ec2', region_name='us-east-1')\n")
    done = run(images["trainer"], "-c", code, entrypoint="python")
    assert done.returncode == 0, done.stderr[-2000:]
    layers = {}
    for role, image in images.items():
        layers[role] = json.loads(subprocess.run(
            ["docker", "image", "inspect", "-f", "{{json .RootFS.Layers}}", image],
            capture_output=True, text=True, check=True).stdout)
    # base, user and dependencies shared; the trainer's extra layer; stbench on top of each
    assert layers["trainer"][:-2] == layers["orchestrator"][:-1]
