"""Train a ResNet-18 on CIFAR-10, reporting validation accuracy and loss after every epoch.

The real GPU benchmark, with the config space of Syne Tune's former resnet_cifar10 benchmark
(batch_size, momentum, weight_decay, lr; up to 27 epochs). torchvision's resnet18 is adapted
to 32x32 images the usual way: a 3x3 stride-1 first convolution and no max-pooling. SGD,
random-crop and flip augmentation, done on the device in batches so no DataLoader workers
are needed. Validation is a fixed tenth of the training images; the test batch is not used.
Model, precision and batching are in resnet_training.py.

A Syne Tune style script: arguments in, `[tune-metric]` lines out (`epoch`, `val_accuracy`,
`val_loss`, `train_loss`, `epoch_seconds` and `cache_hit`: 1 when the dataset was already in
place, e.g. in a reused warm pool, 0 when this trial fetched it). The first report of each
process also carries `startup_seconds`: from the process's start to its first training step
(interpreter, imports, data, CUDA initialisation, model, checkpoint), which a one-epoch
trial pays on top of its `epoch_seconds`. With `--st_checkpoint_dir`, model, optimizer,
gradient scaler and epoch are saved after every epoch and a restarted trial resumes with the
next epoch.

Speed switches (defaults in brackets): `--amp auto|bf16|fp16|off` [auto: bf16 or fp16 on
CUDA, off on the CPU], `--channels_last auto|on|off` [auto: on for CUDA],
`--cudnn_benchmark on|off` [on; not yet measured against off on a GPU],
`--fixed_shapes on|off` [on; off is the variable-shape batching of the first version, the
baseline of bench/gpu_epoch.py]. `--seed` [0] seeds every random stream of the trial.
Where the dataset comes from is described in stbench/benchmarks/cifar10_data.py.
"""

from __future__ import annotations

import time

IMPORTED_AT = time.monotonic()  # before the heavy imports: the fallback start of the process

import argparse  # noqa: E402  (after the timestamp)
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from syne_tune import Reporter  # noqa: E402

from stbench.benchmarks.cifar10_data import (  # noqa: E402
    DatasetError,
    ensure_cifar10,
    load_train_val,
)

IMPORT_ERROR = ""
try:  # the trial supervisor preloads these imports; a missing torch fails below, in one line
    import torch

    from stbench.benchmarks.resnet_training import Trainer, resolve_precision
except ImportError as err:
    torch = None
    IMPORT_ERROR = str(err)

CHECKPOINT = "checkpoint.pt"
# a process older than its first line by more than this has a start time we cannot trust
MAX_PRE_IMPORT_SECONDS = 60.0


def seconds_since_process_start() -> float | None:
    """Age of this process from /proc/self/stat (Linux), None where that cannot be read.

    The start time counts clock ticks since boot, the clock CLOCK_BOOTTIME reads. For a
    trial forked by stbench's trial supervisor it is the fork, for any other the exec.
    """
    try:
        with open("/proc/self/stat") as handle:
            stat = handle.read()
        start_ticks = int(stat[stat.rindex(")") + 2:].split()[19])  # field 22, starttime
        return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def startup_seconds() -> float:
    """Seconds from process start to now, or from this module's first line when the process
    start time is unavailable or implausible (e.g. a sandbox whose clocks disagree)."""
    since_import = time.monotonic() - IMPORTED_AT
    age = seconds_since_process_start()
    if age is None or not since_import - 0.05 <= age <= since_import + MAX_PRE_IMPORT_SECONDS:
        return since_import
    return age


def load_checkpoint(path: Path | None, trainer: Trainer, device: torch.device) -> int:
    """The last finished epoch (0 without a checkpoint), with the trainer's state restored."""
    if path is None or not path.is_file():
        return 0
    return trainer.load_state_dict(torch.load(path, map_location=device, weights_only=True))


def save_checkpoint(path: Path | None, trainer: Trainer, epoch: int) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    torch.save(trainer.state_dict(epoch), tmp)
    tmp.replace(path)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch_size", type=int, required=True)
    parser.add_argument("--momentum", type=float, required=True)
    parser.add_argument("--weight_decay", type=float, required=True)
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--epochs", type=int, default=27)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--amp", choices=("auto", "bf16", "fp16", "off"), default="auto")
    parser.add_argument("--channels_last", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--cudnn_benchmark", choices=("on", "off"), default="on")
    parser.add_argument("--fixed_shapes", choices=("on", "off"), default="on")
    parser.add_argument("--dataset_path", type=str, default=None,
                        help="local data folder (default $STBENCH_DATA_DIR or ~/.cache/stbench)")
    parser.add_argument("--st_checkpoint_dir", type=str, default=None)
    args, _ = parser.parse_known_args()
    return args


def main() -> None:
    args = parse_args()
    if torch is None:
        sys.exit(f"resnet_cifar10 needs PyTorch and torchvision ({IMPORT_ERROR}); "
                 "install them, e.g. pip install torch torchvision")
    try:
        folder, cache_hit = ensure_cifar10(args.dataset_path)
        x_train, y_train, x_val, y_val = load_train_val(folder)
    except DatasetError as err:
        sys.exit(f"resnet_cifar10: {err}")

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.type == "cuda"
    native_bf16 = cuda and torch.cuda.is_bf16_supported(including_emulation=False)
    try:
        precision = resolve_precision(args.amp, args.channels_last, device, native_bf16)
    except ValueError as err:
        sys.exit(f"resnet_cifar10: {err}")
    if cuda:
        torch.backends.cudnn.benchmark = args.cudnn_benchmark == "on"
    trainer = Trainer(precision, lr=args.lr, momentum=args.momentum,
                      weight_decay=args.weight_decay, seed=args.seed)
    checkpoint = Path(args.st_checkpoint_dir) / CHECKPOINT if args.st_checkpoint_dir else None
    start = load_checkpoint(checkpoint, trainer, device)
    if start >= args.epochs:
        return
    images, labels, val_images, val_labels = (
        torch.from_numpy(np.ascontiguousarray(a)).to(device)
        for a in (x_train, y_train, x_val, y_val))
    batch_size = max(1, min(args.batch_size, len(images)))
    fixed_shapes = args.fixed_shapes == "on"
    where = f"cuda ({torch.cuda.get_device_name(device)})" if cuda else "cpu"
    print(f"resnet_cifar10: {where}, torch {torch.__version__}, {precision.describe()}, "
          f"cudnn.benchmark {args.cudnn_benchmark if cuda else 'n/a'}, "
          f"fixed shapes {args.fixed_shapes}, batch {batch_size}", flush=True)
    if cuda:
        torch.cuda.synchronize()  # the copies and the model's move belong to the start-up
    startup = startup_seconds()
    report = Reporter()
    for epoch in range(start + 1, args.epochs + 1):
        began = time.monotonic()
        train_loss = trainer.train_epoch(images, labels, batch_size, epoch, fixed_shapes)
        accuracy, val_loss = trainer.evaluate(val_images, val_labels, batch_size, fixed_shapes)
        save_checkpoint(checkpoint, trainer, epoch)
        first = {"startup_seconds": startup} if epoch == start + 1 else {}
        report(epoch=epoch, val_accuracy=accuracy, val_loss=val_loss, train_loss=train_loss,
               cache_hit=int(cache_hit), epoch_seconds=time.monotonic() - began, **first)


if __name__ == "__main__":
    main()
