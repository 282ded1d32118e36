"""CIFAR-10 on disk for the resnet_cifar10 benchmark: where it lives, fetching it once, reading it.

Where the data lives (the folder that holds `cifar-10-batches-py/`):

- with an input channel `dataset` (`stbench run --inputs dataset=SOURCE`: SageMaker and the
  Docker back-end copy it to `/opt/ml/input/data/dataset`, `$SM_CHANNEL_DATASET`): a channel
  holding `cifar-10-batches-py/` is used where it is; one holding a `.tar.gz` (e.g. the
  official `cifar-10-python.tar.gz` on S3) is unpacked once into the folder below, so a trial
  on a reused warm instance skips that too. A channel's archive is not md5-checked: it is the
  user's chosen copy (a generated stand-in too); each batch's format still is;
- with `SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY` set (SageMaker, or stbench's Docker
  back-end): `<that folder>/cifar10`, so trials that reuse a warm instance find it there;
- otherwise the local data folder: `--dataset_path`, default `$STBENCH_DATA_DIR`, default
  `~/.cache/stbench`.

When it is absent, the first trial fetches it while holding a lock file, unpacks it into a
temporary folder and renames that into place, so a second trial on the same instance waits
and never sees a half-written folder. The copy comes from the local data folder when that one
holds it (the warm-pool case), else from the official tarball, md5-checked (`STBENCH_CIFAR10_URL`
names a mirror; tests point it at an unreachable address so they never download).

The files are read directly (the standard pickle batches) rather than through
torchvision.datasets.CIFAR10, which md5-checks every batch and so rejects `write_tiny_cifar10`'s
generated stand-in. Make one for a smoke run with
`python -m stbench.benchmarks.cifar10_data /tmp/tiny` and `STBENCH_DATA_DIR=/tmp/tiny`.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import pickle
import shutil
import tarfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

CACHE_ENV = "SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY"
CHANNEL = "dataset"
CHANNEL_ENV = "SM_CHANNEL_DATASET"
DATA_DIR_ENV = "STBENCH_DATA_DIR"
URL_ENV = "STBENCH_CIFAR10_URL"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
LABEL_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck")
DOWNLOAD_TIMEOUT_S = 60


class DatasetError(Exception):
    """The dataset cannot be found, fetched or read; the message says what to do (one line)."""


def default_data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV) or Path.home() / ".cache" / "stbench")


def data_root(dataset_path: str | None) -> tuple[Path, Path | None]:
    """(folder the data is used from, local folder to copy it from when it is absent there)."""
    local = Path(dataset_path).expanduser() if dataset_path else default_data_dir()
    cache = os.environ.get(CACHE_ENV)
    if cache:
        return Path(cache) / "cifar10", local
    return local, None


def dataset_channel() -> Path | None:
    """The `dataset` input channel's folder, None when the trial has none."""
    from stbench.model.container_contract import opt_ml_root

    named = os.environ.get(CHANNEL_ENV)
    folder = Path(named) if named else opt_ml_root() / "input" / "data" / CHANNEL
    return folder if folder.is_dir() else None


def channel_archive(channel: Path) -> Path:
    """The one `.tar.gz` of a channel without a `cifar-10-batches-py/` folder."""
    archives = sorted(channel.glob("*.tar.gz"))
    if len(archives) != 1:
        raise DatasetError(f"the '{CHANNEL}' channel {channel} holds neither {FOLDER}/ nor one "
                           f".tar.gz of it ({len(archives)} found): give it the folder or "
                           "cifar-10-python.tar.gz")
    return archives[0]


def is_complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in (*TRAIN_BATCHES, TEST_BATCH))


def ensure_cifar10(dataset_path: str | None = None) -> tuple[Path, bool]:
    """The `cifar-10-batches-py` folder, fetched if needed, and whether it was already there."""
    channel = dataset_channel()
    if channel is not None and is_complete(channel / FOLDER):
        return channel / FOLDER, True
    archive = channel_archive(channel) if channel is not None else None
    root, local = data_root(dataset_path)
    target = root / FOLDER
    if is_complete(target):
        return target, True
    try:
        root.mkdir(parents=True, exist_ok=True)
        with _locked(root / f".{FOLDER}.lock"):
            if is_complete(target):  # another trial fetched it while we waited
                return target, True
            if target.exists():
                raise DatasetError(f"{target} exists but lacks some of {', '.join(TRAIN_BATCHES)}, "
                                   f"{TEST_BATCH}: remove it so it is fetched again")
            _fetch(root, local, archive)
    except (OSError, tarfile.TarError) as err:  # a full disk, no permission, a broken archive
        raise DatasetError(f"cannot prepare CIFAR-10 in {root}: {err}") from None
    return target, False


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fetch(root: Path, local: Path | None, archive: Path | None = None) -> None:
    """Copy, unpack the channel's archive or download, into a fresh temporary folder, then
    rename it into place."""
    for stale in root.glob(f".{FOLDER}.partial-*"):  # left by a killed trial; we hold the lock
        shutil.rmtree(stale, ignore_errors=True)
    partial = root / f".{FOLDER}.partial-{os.getpid()}"
    partial.mkdir()
    try:
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        if archive is not None:
            with tarfile.open(archive) as opened:
                opened.extractall(partial, **safe)
        elif local is not None and is_complete(local / FOLDER):
            shutil.copytree(local / FOLDER, partial / FOLDER)
        else:
            tarball = partial / "cifar-10-python.tar.gz"
            _download(os.environ.get(URL_ENV) or URL, tarball, root)
            with tarfile.open(tarball) as opened:  # md5-checked; the filter where Python has it
                opened.extractall(partial, **safe)
            tarball.unlink()
        if not is_complete(partial / FOLDER):
            raise DatasetError(f"the CIFAR-10 archive has no complete {FOLDER} folder; "
                               f"delete {root} and try again")
        os.rename(partial / FOLDER, root / FOLDER)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _download(url: str, dest: Path, root: Path) -> None:
    digest = hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, \
                open(dest, "wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except (OSError, ValueError) as err:  # URLError, timeouts and refused connections are OSError
        reason = getattr(err, "reason", err)
        raise DatasetError(
            f"cannot download CIFAR-10 from {url} ({reason}); without network access put a copy "
            f"of {FOLDER} into {root} (or set {DATA_DIR_ENV}), or set {URL_ENV} to a mirror"
        ) from None
    if digest.hexdigest() != MD5:
        raise DatasetError(f"{url} gave a file with md5 {digest.hexdigest()}, not CIFAR-10's "
                           f"{MD5}: check {URL_ENV} or the network proxy")


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, 3, 32, 32) uint8 and labels (n,) int64 from one pickled batch file."""
    try:
        with open(path, "rb") as handle:
            batch = pickle.load(handle, encoding="latin1")  # the official files are Python 2
        batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, AttributeError, ValueError,
            TypeError) as err:
        raise DatasetError(f"cannot read CIFAR-10 batch {path} ({type(err).__name__}: {err}); "
                           f"delete {path.parent} so it is fetched again") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data) \
            or labels.size and not 0 <= labels.min() <= labels.max() < 10:
        raise DatasetError(f"{path} is not a CIFAR-10 batch (data {data.shape}, "
                           f"{len(labels)} labels); delete {path.parent} so it is fetched again")
    return data.reshape(-1, 3, 32, 32), labels


def load_train_val(folder: Path, val_fraction: float = 0.1,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images, train labels, val images, val labels) from the five training batches.

    The validation set is a fixed, seeded tenth of the training batches (5000 of 50000
    images), the same for every trial, so HPO never looks at the test batch.
    """
    parts = [read_batch(folder / name) for name in TRAIN_BATCHES]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    order = np.random.default_rng(seed).permutation(len(images))
    n_val = max(1, round(len(images) * val_fraction))
    val, train = order[:n_val], order[n_val:]
    return images[train], labels[train], images[val], labels[val]


def write_tiny_cifar10(root: Path, n_train: int = 300, n_test: int = 100,
                       seed: int = 0) -> Path:
    """Write a small generated stand-in for CIFAR-10 in the official format; return its folder.

    Each class has its own mean colour and a brightness ramp in its own direction, under heavy
    per-pixel noise, so a network learns it within a few epochs but not at once.
    """
    rng = np.random.default_rng(seed)
    colours = rng.uniform(40, 215, size=(10, 3, 1, 1))
    ramp = np.linspace(-40, 40, 32)
    folder = Path(root) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)

    def images(n: int) -> tuple[np.ndarray, list[int]]:
        labels = rng.integers(0, 10, size=n)
        ramps = np.where((labels % 2 == 0)[:, None, None], ramp[None, :, None],
                         ramp[None, None, :]) * np.where(labels < 5, 1, -1)[:, None, None]
        pixels = colours[labels] + ramps[:, None] + rng.normal(0, 45, size=(n, 3, 32, 32))
        data = np.clip(pixels, 0, 255).astype(np.uint8).reshape(n, -1)
        return data, [int(v) for v in labels]

    per_batch = [len(a) for a in np.array_split(np.arange(n_train), len(TRAIN_BATCHES))]
    for i, (name, n) in enumerate([*zip(TRAIN_BATCHES, per_batch, strict=True),
                                   (TEST_BATCH, n_test)]):
        data, labels = images(n)
        batch = {"batch_label": f"generated batch {i + 1}", "labels": labels, "data": data,
                 "filenames": [f"generated_{i}_{j}.png" for j in range(n)]}
        with open(folder / name, "wb") as handle:
            pickle.dump(batch, handle, protocol=2)
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({"label_names": list(LABEL_NAMES), "num_cases_per_batch": max(per_batch),
                     "num_vis": 3072}, handle, protocol=2)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Write a tiny generated CIFAR-10 stand-in for smoke runs of resnet_cifar10.")
    parser.add_argument("folder", help=f"where to create {FOLDER}/ (then set {DATA_DIR_ENV})")
    parser.add_argument("--n_train", type=int, default=300)
    parser.add_argument("--n_test", type=int, default=100)
    args = parser.parse_args()
    print(write_tiny_cifar10(Path(args.folder), args.n_train, args.n_test))


if __name__ == "__main__":
    main()
