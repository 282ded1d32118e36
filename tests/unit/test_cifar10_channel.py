"""resnet_cifar10 reads CIFAR-10 from an input channel `dataset` when the trial has one
(`--inputs dataset=s3://…/cifar-10-python.tar.gz`, or a local folder for --backend docker),
and still downloads once into the warm-pool cache otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from stbench.backends.jobs.channels import prepare_channels
from stbench.benchmarks.cifar10_data import FOLDER, DatasetError, ensure_cifar10, write_tiny_cifar10

NO_NETWORK_URL = "http://127.0.0.1:9/cifar-10-python.tar.gz"


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("STBENCH_CIFAR10_URL", NO_NETWORK_URL)
    monkeypatch.setenv("STBENCH_DATA_DIR", str(tmp_path / "no-local-copy"))
    monkeypatch.setenv("STBENCH_OPT_ML", str(tmp_path / "opt_ml"))
    monkeypatch.delenv("SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY", raising=False)
    monkeypatch.delenv("SM_CHANNEL_DATASET", raising=False)
    return tmp_path


def test_a_channel_holding_the_folder_is_used_where_it_is(
        offline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    channel = offline / "opt_ml" / "input" / "data" / "dataset"
    write_tiny_cifar10(channel, n_train=20, n_test=5)
    assert ensure_cifar10() == (channel / FOLDER, True)
    monkeypatch.setenv("SM_CHANNEL_DATASET", str(channel))  # the toolkit's name wins
    assert ensure_cifar10() == (channel / FOLDER, True)


def test_a_channel_archive_is_unpacked_once_into_the_warm_pool_cache(
        offline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = write_tiny_cifar10(offline / "made", n_train=20, n_test=5)
    channel = offline / "channel"
    channel.mkdir()
    with tarfile.open(channel / "cifar-10-python.tar.gz", "w:gz") as archive:
        archive.add(source, arcname=FOLDER)
    monkeypatch.setenv("SM_CHANNEL_DATASET", str(channel))
    monkeypatch.setenv("SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY", str(offline / "cache"))
    unpacked = offline / "cache" / "cifar10" / FOLDER
    assert ensure_cifar10() == (unpacked, False)
    assert ensure_cifar10() == (unpacked, True), "a reused instance finds it in its cache"


def test_a_channel_without_the_dataset_is_one_clear_line(
        offline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (offline / "channel").mkdir()
    (offline / "channel" / "readme.txt").write_text("wrong folder")
    monkeypatch.setenv("SM_CHANNEL_DATASET", str(offline / "channel"))
    with pytest.raises(DatasetError) as info:
        ensure_cifar10()
    assert "\n" not in str(info.value) and "neither cifar-10-batches-py/" in str(info.value)


@pytest.mark.slow
def test_trainer_runs_resnet_from_a_local_dataset_channel(offline: Path) -> None:
    """The trainer's container contract as the Docker back-end lays it out (channel copied,
    inputdataconfig.json written), without Docker: the CPU trainer image has no PyTorch."""
    pytest.importorskip("torch", reason="resnet_cifar10 needs PyTorch (the torch extra)")
    data = offline / "tiny-cifar"
    write_tiny_cifar10(data, n_train=40, n_test=10)
    root = offline / "opt_ml"
    request = {"AlgorithmSpecification": {"TrainingInputMode": "File"}, "InputDataConfig": [
        {"ChannelName": "dataset", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"file://{data}"}}}]}
    prepare_channels(root, request, s3=lambda: None)
    hyperparameters = {"stbench_benchmark": "resnet_cifar10", "batch_size": "16",
                       "momentum": "0.9", "weight_decay": "0.0005", "lr": "0.05", "epochs": "1"}
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    env = {key: value for key, value in os.environ.items()
           if key not in ("SM_CHANNEL_DATASET", "SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY")}
    env["CUDA_VISIBLE_DEVICES"] = ""
    result = subprocess.run([str(Path(sys.executable).parent / "stbench-trainer"), "train"],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    reports = [json.loads(line.split("[tune-metric]: ", 1)[1])
               for line in result.stdout.splitlines() if "[tune-metric]: " in line]
    assert [r["epoch"] for r in reports] == [1] and reports[0]["cache_hit"] == 1
    assert not (offline / "no-local-copy").exists(), "nothing was fetched: the channel served"
