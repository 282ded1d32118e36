"""The resnet_cifar10 benchmark: its YAML, and its real training script run on CPU.

The script runs as a subprocess on a tiny generated CIFAR-10 stand-in (never a download:
STBENCH_CIFAR10_URL points at a closed local port). Tests that need PyTorch skip without it,
and fail under CI=true, where they must run.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from stbench.benchmarks import cifar10_data
from stbench.benchmarks.cifar10_data import (
    FOLDER,
    DatasetError,
    ensure_cifar10,
    load_train_val,
    read_batch,
    write_tiny_cifar10,
)
from stbench.model.benchmark import BUILTIN_DIR, load_benchmark

SCRIPT = BUILTIN_DIR / "resnet_cifar10.py"
METRIC_TAG = "[tune-metric]: "
NO_NETWORK_URL = "http://127.0.0.1:9/cifar-10-python.tar.gz"  # discard port: refused at once
TINY_TRAIN = 50  # 45 training and 5 validation images
CONFIG = {"batch_size": 16, "momentum": 0.9, "weight_decay": 5e-4, "lr": 0.05}


def require_torch() -> None:
    """Skip without PyTorch here; fail in CI (the pattern of tests/integration/conftest.py)."""
    try:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError as err:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"resnet_cifar10 test cannot run in CI: {err}", pytrace=False)
        pytest.skip(f"needs PyTorch and torchvision ({err})")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local data folder holding the generated stand-in, shared by the module's tests."""
    root = tmp_path_factory.mktemp("tiny-cifar")
    write_tiny_cifar10(root, n_train=TINY_TRAIN, n_test=10)  # ResNet-18 on CPU: ~2 s an epoch
    return root


def run_script(epochs: int, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    args = [arg for key, value in CONFIG.items() for arg in (f"--{key}", str(value))]
    full_env = dict(os.environ)
    full_env.pop("SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY", None)
    full_env.update({"STBENCH_CIFAR10_URL": NO_NETWORK_URL, "CUDA_VISIBLE_DEVICES": "", **env})
    return subprocess.run([sys.executable, str(SCRIPT), *args, "--epochs", str(epochs), *extra],
                          env=full_env, capture_output=True, text=True, timeout=300)


def reports(result: subprocess.CompletedProcess) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stderr[-2000:]
    return [json.loads(line[len(METRIC_TAG):]) for line in result.stdout.splitlines()
            if line.startswith(METRIC_TAG)]


# --- the YAML (no torch needed) ---------------------------------------------------------------


def test_yaml_loads_with_expected_defaults() -> None:
    bench = load_benchmark("resnet_cifar10")
    assert (bench.metric, bench.mode) == ("val_accuracy", "max")
    assert (bench.resource_attr, bench.max_resource_attr, bench.max_resource) == (
        "epoch", "epochs", 27)
    assert set(bench.tunable_names()) == {"batch_size", "momentum", "weight_decay", "lr"}
    assert bench.script == SCRIPT.resolve() and bench.image == "gpu"
    assert (bench.n_workers, bench.max_wallclock_time) == (4, 10800)
    assert bench.for_backend("local").instance_type == "ml.g4dn.12xlarge"
    assert bench.for_backend("docker").instance_type == "ml.g4dn.12xlarge"
    assert bench.for_backend("sagemaker").instance_type == "ml.g4dn.xlarge"
    assert bench.for_backend("sagemaker").n_workers == 4
    space = bench.config_space
    assert (space["batch_size"].lower, space["batch_size"].upper) == (8, 256)
    assert (space["momentum"].lower, space["momentum"].upper) == (0.0, 0.99)
    assert (space["weight_decay"].lower, space["weight_decay"].upper) == (1e-5, 1e-3)
    assert (space["lr"].lower, space["lr"].upper) == (1e-3, 0.1)
    for point in bench.points_to_evaluate:
        assert all(space[key].is_valid(value) for key, value in point.items())


# --- the dataset helpers (no torch needed) ----------------------------------------------------


def test_generated_batches_have_the_official_layout(tiny_data: Path) -> None:
    images, labels = read_batch(tiny_data / FOLDER / "data_batch_1")
    assert images.shape == (10, 3, 32, 32) and images.dtype.name == "uint8"
    assert labels.min() >= 0 and labels.max() <= 9
    x_train, y_train, x_val, y_val = load_train_val(tiny_data / FOLDER)
    assert (len(x_train), len(x_val)) == (45, 5) and (len(y_train), len(y_val)) == (45, 5)
    again = load_train_val(tiny_data / FOLDER)
    assert (again[3] == y_val).all(), "the validation split is fixed"


def test_absent_data_without_network_is_one_clear_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STBENCH_CIFAR10_URL", NO_NETWORK_URL)
    monkeypatch.delenv("SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY", raising=False)
    with pytest.raises(DatasetError) as info:
        ensure_cifar10(str(tmp_path / "empty"))
    message = str(info.value)
    assert "\n" not in message and "cannot download CIFAR-10" in message
    assert str(tmp_path / "empty") in message
    assert not (tmp_path / "empty" / FOLDER).exists()
    assert not list((tmp_path / "empty").glob(".*partial*")), "no half-written folder is left"


def test_warm_pool_cache_is_filled_once_from_the_local_copy(
        tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STBENCH_CIFAR10_URL", NO_NETWORK_URL)
    monkeypatch.setenv("SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY", str(tmp_path / "cache"))
    first, hit = ensure_cifar10(str(tiny_data))
    assert first == tmp_path / "cache" / "cifar10" / FOLDER and not hit
    assert ensure_cifar10(str(tiny_data)) == (first, True)


def tarball_of(folder: Path, dest: Path) -> str:
    """The folder packed like the official archive; returns a file:// URL to it."""
    with tarfile.open(dest, "w:gz") as archive:
        archive.add(folder, arcname=FOLDER)
    return dest.as_uri()


def test_download_is_md5_checked_and_unpacked_once_under_concurrency(
        tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = tarball_of(tiny_data / FOLDER, tmp_path / "cifar-10-python.tar.gz")
    monkeypatch.setenv("STBENCH_CIFAR10_URL", url)
    monkeypatch.delenv("SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY", raising=False)
    with pytest.raises(DatasetError, match="md5"):  # not the official archive
        ensure_cifar10(str(tmp_path / "bad"))
    assert not (tmp_path / "bad" / FOLDER).exists()

    md5 = hashlib.md5((tmp_path / "cifar-10-python.tar.gz").read_bytes()).hexdigest()
    monkeypatch.setattr(cifar10_data, "MD5", md5)
    root = str(tmp_path / "data")
    with ThreadPoolExecutor(4) as pool:  # flock excludes separate opens, threads included
        results = list(pool.map(lambda _: ensure_cifar10(root), range(4)))
    assert sorted(hit for _, hit in results) == [False, True, True, True]
    assert {folder for folder, _ in results} == {tmp_path / "data" / FOLDER}
    assert (read_batch(tmp_path / "data" / FOLDER / "test_batch")[1]
            == read_batch(tiny_data / FOLDER / "test_batch")[1]).all()
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [
        f".{FOLDER}.lock", FOLDER], "no archive or partial folder is left behind"


# --- the real script, on CPU ------------------------------------------------------------------


@pytest.mark.slow
def test_trains_checkpoints_and_resumes_with_the_next_epoch(tiny_data: Path,
                                                             tmp_path: Path) -> None:
    require_torch()
    checkpoints = tmp_path / "checkpoints"
    env = {"STBENCH_DATA_DIR": str(tiny_data)}
    first = reports(run_script(2, env, "--st_checkpoint_dir", str(checkpoints)))
    assert [r["epoch"] for r in first] == [1, 2]
    for report in first:
        assert 0.0 <= report["val_accuracy"] <= 1.0 and report["val_loss"] > 0
        assert report["cache_hit"] == 1  # the data was in the local data folder already
    assert (checkpoints / "checkpoint.pt").is_file()
    assert not list(checkpoints.glob("*.tmp*"))

    resumed = reports(run_script(3, env, "--st_checkpoint_dir", str(checkpoints)))
    assert [r["epoch"] for r in resumed] == [3], "resumes after the checkpointed epoch 2"


@pytest.mark.slow
def test_second_trial_reuses_the_warm_pool_copy(tiny_data: Path, tmp_path: Path) -> None:
    require_torch()
    env = {"SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY": str(tmp_path / "cache")}
    first = reports(run_script(1, env, "--dataset_path", str(tiny_data)))
    second = reports(run_script(1, env, "--dataset_path", str(tiny_data)))
    assert [r["cache_hit"] for r in first] == [0]
    assert [r["cache_hit"] for r in second] == [1]
    assert (tmp_path / "cache" / "cifar10" / FOLDER / "test_batch").is_file()


@pytest.mark.slow
def test_missing_dataset_fails_with_one_line(tmp_path: Path) -> None:
    require_torch()
    result = run_script(1, {"STBENCH_DATA_DIR": str(tmp_path / "nothing")})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("resnet_cifar10: cannot download CIFAR-10")
    assert "[tune-metric]" not in result.stdout
