"""The resnet_cifar10 benchmark: its YAML, and its real training script run on CPU.

The script runs as a subprocess on a tiny generated CIFAR-10 stand-in (never a download:
STBENCH_CIFAR10_URL points at a closed local port), its training half (resnet_training.py)
in this process. Tests that need PyTorch skip without it, and fail under CI=true, where they
must run. The CUDA test runs only where a GPU is (bench/gpu_check.sh runs this file there).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import time
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
from stbench.model.benchmark import BUILTIN_DIR
from stbench.model.catalog import load_benchmark

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


def run_script(epochs: int, env: dict[str, str], *extra: str,
               gpu: bool = False) -> subprocess.CompletedProcess:
    """The script on the CPU (or, with `gpu`, on the GPUs this process sees)."""
    args = [arg for key, value in CONFIG.items() for arg in (f"--{key}", str(value))]
    full_env = dict(os.environ)
    full_env.pop("SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY", None)
    full_env.update({"STBENCH_CIFAR10_URL": NO_NETWORK_URL, **env})
    if not gpu:
        full_env["CUDA_VISIBLE_DEVICES"] = ""
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
    assert bench.config_space["amp"] == "auto", "mixed precision on for GPUs, off on CPUs"
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
    began = time.monotonic()
    first = reports(run_script(2, env, "--st_checkpoint_dir", str(checkpoints)))
    wall = time.monotonic() - began
    assert [r["epoch"] for r in first] == [1, 2]
    for report in first:
        assert 0.0 <= report["val_accuracy"] <= 1.0 and report["val_loss"] > 0
        assert report["cache_hit"] == 1  # the data was in the local data folder already
    # start-up (interpreter, imports, data, model) is reported once, apart from the epochs
    assert 0.3 < first[0]["startup_seconds"] < wall - first[0]["epoch_seconds"]
    assert "startup_seconds" not in first[1]
    assert (checkpoints / "checkpoint.pt").is_file()
    assert not list(checkpoints.glob("*.tmp*"))

    resumed = reports(run_script(3, env, "--st_checkpoint_dir", str(checkpoints)))
    assert [r["epoch"] for r in resumed] == [3], "resumes after the checkpointed epoch 2"
    assert resumed[0]["startup_seconds"] > 0, "a resumed process pays its own start-up"

    straight = reports(run_script(3, env, "--st_checkpoint_dir", str(tmp_path / "straight")))
    for key in ("train_loss", "val_loss", "val_accuracy"):  # the same batches, redrawn
        assert resumed[0][key] == pytest.approx(straight[2][key], rel=1e-4), key


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


# --- speed: fixed shapes, precision, device-side augmentation (in this process, CPU) -------


def train_val_tensors(folder: Path) -> tuple[Any, Any, Any, Any]:
    import torch

    return tuple(torch.from_numpy(a) for a in load_train_val(folder / FOLDER))


def cpu_trainer(dtype: Any = None, channels_last: bool = False, lr: float = 0.01) -> Any:
    import torch

    from stbench.benchmarks.resnet_training import Precision, Trainer

    precision = Precision(torch.device("cpu"), dtype, channels_last)
    return Trainer(precision, lr=lr, momentum=0.9, weight_decay=5e-4, seed=0)


def test_precision_follows_the_device() -> None:
    require_torch()
    import torch

    from stbench.benchmarks.resnet_training import resolve_precision

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    on_cpu = resolve_precision("auto", "auto", cpu, native_bf16=False)
    assert (on_cpu.dtype, on_cpu.channels_last) == (None, False)
    h200 = resolve_precision("auto", "auto", cuda, native_bf16=True)
    assert (h200.dtype, h200.channels_last) == (torch.bfloat16, True)
    t4 = resolve_precision("auto", "auto", cuda, native_bf16=False)
    assert t4.dtype == torch.float16, "no native bf16 (T4): fp16 with a gradient scaler"
    with pytest.raises(ValueError, match="no native bf16"):
        resolve_precision("bf16", "auto", cuda, native_bf16=False)
    fp32 = resolve_precision("off", "off", cuda, native_bf16=True)
    assert (fp32.dtype, fp32.channels_last) == (None, False)
    assert resolve_precision("bf16", "on", cpu, native_bf16=False).dtype == torch.bfloat16


def test_fixed_shapes_give_the_network_one_input_shape(tiny_data: Path) -> None:
    require_torch()
    x, y, x_val, y_val = train_val_tensors(tiny_data)  # 45 and 5 images
    trainer = cpu_trainer()
    shapes: set[tuple[int, ...]] = set()
    trainer.model.register_forward_pre_hook(lambda _, args: shapes.add(tuple(args[0].shape)))

    trainer.train_epoch(x, y, batch_size=16, epoch=1, fixed_shapes=True)
    padded = trainer.evaluate(x_val, y_val, batch_size=16, fixed_shapes=True)
    assert shapes == {(16, 3, 32, 32)}, "partial batch dropped, evaluation padded"
    shapes.clear()
    trainer.train_epoch(x, y, batch_size=16, epoch=2, fixed_shapes=False)
    unpadded = trainer.evaluate(x_val, y_val, batch_size=16, fixed_shapes=False)
    assert {s[0] for s in shapes} == {16, 45 % 16, 5}, "the first version's three shapes"
    again = trainer.evaluate(x_val, y_val, batch_size=16, fixed_shapes=True)
    assert again[0] == unpadded[0] and again[1] == pytest.approx(unpadded[1], rel=1e-5), \
        "padding does not change the validation metrics"
    assert 0.0 <= padded[0] <= 1.0


@pytest.fixture(scope="module")
def learnable_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("learnable-cifar")
    write_tiny_cifar10(root, n_train=72, n_test=4)  # 65 training, 7 validation images
    return root


@pytest.mark.slow
@pytest.mark.parametrize("amp", ["off", "bf16"])
def test_training_lowers_the_loss_in_fp32_and_in_bf16_autocast(learnable_data: Path,
                                                                amp: str) -> None:
    require_torch()
    import torch

    dtype = torch.bfloat16 if amp == "bf16" else None
    trainer = cpu_trainer(dtype, channels_last=amp == "bf16")
    dtypes: set[torch.dtype] = set()
    trainer.model.fc.register_forward_hook(lambda *args: dtypes.add(args[2].dtype))
    x, y, x_val, y_val = train_val_tensors(learnable_data)
    losses = [trainer.train_epoch(x, y, batch_size=16, epoch=e) for e in (1, 2, 3)]
    accuracy, val_loss = trainer.evaluate(x_val, y_val, batch_size=16)
    assert losses[-1] < 0.8 * losses[0], losses
    assert 0.0 <= accuracy <= 1.0 and 0.0 < val_loss < float("inf")
    assert dtypes == {dtype or torch.float32}, "autocast computes in the asked precision"
    if amp == "bf16":
        assert trainer.model.conv1.weight.is_contiguous(memory_format=torch.channels_last)


def test_fp16_loss_scale_survives_a_checkpoint(tmp_path: Path) -> None:
    require_torch()
    import torch

    from stbench.benchmarks.resnet_cifar10 import load_checkpoint, save_checkpoint

    trainer = cpu_trainer(torch.float16)
    trainer.scaler.scale(torch.ones(()))
    trainer.scaler.update(new_scale=1024.0)  # as after overflows halved the initial scale
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, trainer, epoch=2)

    resumed = cpu_trainer(torch.float16)
    assert resumed.scaler.get_scale() != 1024.0
    assert load_checkpoint(path, resumed, torch.device("cpu")) == 2
    assert resumed.scaler.get_scale() == 1024.0
    fp32 = cpu_trainer()  # an fp32 trial can still read it, and an fp16 one an fp32 checkpoint
    assert load_checkpoint(path, fp32, torch.device("cpu")) == 2
    save_checkpoint(path, fp32, epoch=3)
    assert load_checkpoint(path, cpu_trainer(torch.float16), torch.device("cpu")) == 3


def test_augmentation_is_seeded_crops_and_flips_of_the_padded_images() -> None:
    require_torch()
    import torch
    import torch.nn.functional as F

    from stbench.benchmarks.resnet_training import AUGMENT_STREAM, augment

    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    trainer = cpu_trainer()
    out = augment(images, trainer.generator(AUGMENT_STREAM, 1))
    padded = F.pad(images, (4, 4, 4, 4))
    for i in range(len(images)):
        windows = [padded[i, :, r:r + 32, c:c + 32] for r in range(9) for c in range(9)]
        assert any(torch.equal(out[i], w) or torch.equal(out[i], w.flip(2)) for w in windows)
    assert torch.equal(out, augment(images, trainer.generator(AUGMENT_STREAM, 1)))
    assert not torch.equal(out, augment(images, trainer.generator(AUGMENT_STREAM, 2)))


@pytest.mark.slow
def test_startup_seconds_count_from_the_process_start() -> None:
    require_torch()
    code = ("import time; time.sleep(1.0); before = time.monotonic(); "
            "from stbench.benchmarks.resnet_cifar10 import startup_seconds; "
            "print(startup_seconds() - (time.monotonic() - before))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=True)
    assert float(result.stdout) >= 1.0, "the time before the script's first line counts too"


# --- the CUDA path (only where a GPU is) -------------------------------------------------------


def test_cuda_trial_trains_in_mixed_precision_and_resumes(tiny_data: Path,
                                                          tmp_path: Path) -> None:
    require_torch()
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU here (bench/gpu_check.sh runs this test on one)")
    env = {"STBENCH_DATA_DIR": str(tiny_data)}
    for amp, expected in (("auto", "autocast"), ("fp16", "fp16 autocast + grad scaler")):
        checkpoints = tmp_path / amp
        first = run_script(2, env, "--amp", amp, "--st_checkpoint_dir", str(checkpoints),
                           gpu=True)
        assert [r["epoch"] for r in reports(first)] == [1, 2]
        assert "resnet_cifar10: cuda (" in first.stdout and expected in first.stdout
        assert "channels_last" in first.stdout
        state = torch.load(checkpoints / "checkpoint.pt", weights_only=True)
        assert bool(state["scaler"]) == (amp == "fp16" or "fp16" in first.stdout)
        resumed = reports(run_script(3, env, "--amp", amp, "--st_checkpoint_dir",
                                     str(checkpoints), gpu=True))
        assert [r["epoch"] for r in resumed] == [3]


# --- bench/gpu_epoch.py stays runnable without a GPU -------------------------------------------


@pytest.mark.slow
def test_epoch_bench_prints_a_table_on_the_cpu() -> None:
    require_torch()
    bench = Path(__file__).parents[2] / "bench" / "gpu_epoch.py"
    result = subprocess.run(
        [sys.executable, str(bench), "--tiny", "--cpu", "--n_images", "60"],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0] == "## resnet_cifar10 epochs on the CPU (bench/gpu_epoch.py)"
    assert lines[2].startswith("Rewritten by `python bench/gpu_epoch.py --tiny --cpu")
    assert "CPU (" in lines[4] and "54 training and 6 validation images" in lines[4]
    rows = [line.split(" | ") for line in lines if line.startswith("| ") and "---" not in line]
    assert [row[0] for row in rows[1:]] == [
        "| fp32 NCHW, variable shapes (baseline)", "| fixed shapes", "| + channels_last",
        "| + AMP (the default on GPUs)"], "cudnn.benchmark has no CPU row"
    assert rows[1][5:7] == ["1.00x", "1.00x"] and "bf16 autocast" in rows[4][1]
    assert all(float(row[2]) > 0 for row in rows[1:]), "start-up seconds in every row"


def test_epoch_bench_table_names_the_gpu_and_compares_cudnn_benchmark(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The GPU table's layout, from made-up reports: a GPU run must not fail at its end."""
    import importlib.util

    bench_dir = Path(__file__).parents[2] / "bench"
    monkeypatch.syspath_prepend(str(bench_dir))
    spec = importlib.util.spec_from_file_location("gpu_epoch", bench_dir / "gpu_epoch.py")
    gpu_epoch = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gpu_epoch", gpu_epoch)  # its dataclasses look it up
    spec.loader.exec_module(gpu_epoch)
    setup = gpu_epoch.Setup(45_000, 5_000, 128, 3, env={}, cuda=True)
    results, descriptions = {}, {}
    for i, variant in enumerate(gpu_epoch.VARIANTS):
        runs = gpu_epoch.Runs()
        for seed in range(2):
            runs.add([{"startup_seconds": 4.0, "epoch_seconds": 20.0 / (i + 1),
                       "val_accuracy": 0.9 + seed / 100},
                      *[{"epoch_seconds": 4.0 / (i + 1), "val_accuracy": 0.95}] * 2])
        results[variant] = runs
        descriptions[variant] = ("cuda (NVIDIA H200), torch 2.11.0, bf16 autocast, "
                                 "channels_last, cudnn.benchmark on, fixed shapes on, batch 128")
    lines = gpu_epoch.table(setup, results, descriptions, repeats=2)
    assert lines[0] == "## resnet_cifar10 epochs on a GPU (bench/gpu_epoch.py)"
    assert "on NVIDIA H200, torch 2.11.0" in lines[2] and "median of 2 run(s)" in lines[2]
    rows = [line.split(" | ") for line in lines if line.startswith("| fp32") or
            line.startswith("| +")]
    assert rows[0][1:5] == ["bf16 autocast, channels_last, cudnn.benchmark on, fixed shapes on",
                            "4.00", "20.00", "4.00"]
    assert rows[-1][5:7] == [f"{(4 + 4) / (4 + 20):.2f}x", "0.20x"]
    assert any(line.startswith("cudnn.benchmark off vs on (with AMP): one-epoch trial 0.89x")
               for line in lines)
