"""The trainer image driven by the SageMaker Python SDK 3.x, as most users start jobs: its
local mode (`ModelTrainer(training_mode=Mode.LOCAL_CONTAINER)`) runs a built-in benchmark's
trial, and a user benchmark's trial from a `code` input channel, to the end.

What the SDK assumes, and how it meets this machine's engine (dockerd --bridge=none):
- it writes `<local_container_root>/docker-compose.yaml` and runs `docker compose up` (the v2
  plugin that images/docker-up.sh installs); the service has no command, so the image's
  `CMD ["train"]` applies (stbench-trainer would also take no command as `train`);
- the container joins a user-defined bridge network, `sagemaker-local`, not the host's: that
  works without docker0, and these trials need no network;
- it puts the caller's AWS credentials into the container's environment, so they are dummies
  here, and `SAGEMAKER_VALIDATE_ROLE=false` keeps it from asking IAM about the role;
- it neither removes the stopped container nor the network: `docker compose down` does, after.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from stbench.model.catalog import load_benchmark
from stbench.model.code_package import CODE_CHANNEL, pack_benchmark

pytestmark = pytest.mark.docker

ROLE = "arn:aws:iam::000000000000:role/stbench-local"  # never checked in local mode
REPORT = "[tune-metric]: "
USER_BENCHMARK = {
    "name": "sdk_echo", "script": "sdk_echo.py", "metric": "loss", "mode": "min",
    "resource_attr": "epoch", "max_resource_attr": "epochs", "max_wallclock_time": 30,
    "n_workers": 1, "instance_type": "ml.c5.xlarge",
    "config_space": {"width": {"type": "randint", "lower": 1, "upper": 64},
                     "act": {"type": "choice", "values": ["relu", "tanh"]}, "epochs": 2},
}
# Reports each epoch what a toolkit-style script sees: its arguments and the SM_* variables.
USER_SCRIPT = """\
import argparse, json, os
parser = argparse.ArgumentParser()
for name in ("width", "act", "epochs", "st_checkpoint_dir"):
    parser.add_argument("--" + name)
args = parser.parse_args()
seen = {k: os.environ[k] for k in ("SM_CHANNELS", "SM_HP_ACT", "SM_HP_WIDTH", "SM_MODEL_DIR")}
for epoch in range(1, int(args.epochs) + 1):
    report = {"epoch": epoch, "loss": 1.0 / (epoch * int(args.width)), "act": args.act, **seen}
    print("[tune-metric]: " + json.dumps(report), flush=True)
"""


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"SageMaker SDK test cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def sdk(images: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The SDK's local mode with dummy credentials; the compose project removed after."""
    try:
        from sagemaker.train import ModelTrainer  # noqa: F401 - the dev extra's sagemaker-train
    except ImportError:
        _unavailable("no SageMaker Python SDK: pip install -e '.[dev]'")
    version = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if version.returncode != 0:
        _unavailable("no `docker compose` v2 plugin: run images/docker-up.sh")
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "SAGEMAKER_VALIDATE_ROLE": "false",
                        "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(name, value)
    yield tmp_path
    for compose in tmp_path.glob("**/docker-compose.yaml"):
        subprocess.run(["docker", "compose", "-f", str(compose), "down", "--remove-orphans"],
                       capture_output=True, timeout=120)


def train_locally(root: Path, image: str, hyperparameters: dict[str, Any],
                  inputs: dict[str, Path] | None = None) -> None:
    from sagemaker.core.training.configs import Compute, InputData
    from sagemaker.train import ModelTrainer
    from sagemaker.train.model_trainer import Mode

    trainer = ModelTrainer(
        training_image=image, training_mode=Mode.LOCAL_CONTAINER, role=ROLE,
        compute=Compute(instance_type="local_cpu"), local_container_root=str(root / "sdk"),
        hyperparameters=hyperparameters,
    )
    channels = [InputData(channel_name=name, data_source=str(folder))
                for name, folder in (inputs or {}).items()]
    (root / "sdk").mkdir(exist_ok=True)
    trainer.train(input_data_config=channels or None, wait=True, logs=True)


def reports(output: str) -> list[dict[str, Any]]:
    """The reports the container printed (compose prefixes each line with the service)."""
    return [json.loads(line.split(REPORT, 1)[1]) for line in output.splitlines()
            if REPORT in line]


def test_a_builtin_benchmarks_trial_runs_under_the_sdks_local_mode(
        sdk: Path, images: dict[str, str], capfd: pytest.CaptureFixture[str]) -> None:
    train_locally(sdk, images["trainer"], {
        "stbench_benchmark": "mlp_digits", "n_units": 32, "learning_rate": 0.01,
        "alpha": 1e-4, "batch_size": 32, "epochs": 3})
    output = capfd.readouterr().out
    assert [r["epoch"] for r in reports(output)] == [1, 2, 3], output[-2000:]
    assert all(0.0 <= r["val_error"] <= 1.0 for r in reports(output))
    assert "[stbench-trainer] end reports=3" in output
    assert "training script completed" in output


def test_a_user_benchmark_travels_as_a_code_channel_under_the_sdk(
        sdk: Path, images: dict[str, str], capfd: pytest.CaptureFixture[str]) -> None:
    folder = sdk / "my_bench"
    folder.mkdir()
    (folder / "sdk_echo.py").write_text(USER_SCRIPT)
    (folder / "sdk_echo.yaml").write_text(yaml.safe_dump(USER_BENCHMARK))
    package = pack_benchmark(load_benchmark(str(folder / "sdk_echo.yaml")))
    channel = sdk / "code_channel"
    channel.mkdir()
    (channel / package.file_name).write_bytes(package.data)
    train_locally(sdk, images["trainer"],
                  {"stbench_benchmark": package.benchmark_file, "width": 8, "act": "tanh"},
                  inputs={CODE_CHANNEL: channel})
    output = capfd.readouterr().out
    got = reports(output)
    assert [r["epoch"] for r in got] == [1, 2], output[-2000:]
    assert got[0]["loss"] == pytest.approx(1 / 8) and got[0]["act"] == "tanh"
    assert json.loads(got[0]["SM_CHANNELS"]) == [CODE_CHANNEL]
    assert (got[0]["SM_HP_ACT"], got[0]["SM_HP_WIDTH"]) == ("tanh", "8")
    assert got[0]["SM_MODEL_DIR"] == "/opt/ml/model"
    shutil.rmtree(channel)
