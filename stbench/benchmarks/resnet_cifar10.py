"""Train a ResNet-18 on CIFAR-10, reporting validation accuracy and loss after every epoch.

The real GPU benchmark, with the config space of Syne Tune's former resnet_cifar10 benchmark
(batch_size, momentum, weight_decay, lr; up to 27 epochs). torchvision's resnet18 is adapted
to 32x32 images the usual way: a 3x3 stride-1 first convolution and no max-pooling. SGD,
random-crop and flip augmentation, done on the device in batches so no DataLoader workers
are needed. Validation is a fixed tenth of the training images; the test batch is not used.

A Syne Tune style script: arguments in, `[tune-metric]` lines out (`epoch`, `val_accuracy`,
`val_loss`, `train_loss`, `epoch_seconds` and `cache_hit`: 1 when the dataset was already in
place, e.g. in a reused warm pool, 0 when this trial fetched it). With `--st_checkpoint_dir`,
model, optimizer and epoch are saved after every epoch and a restarted trial resumes with the
next epoch.
Where the dataset comes from is described in stbench/benchmarks/cifar10_data.py.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from syne_tune import Reporter

from stbench.benchmarks.cifar10_data import DatasetError, ensure_cifar10, load_train_val

IMPORT_ERROR = ""
try:  # the zygote preloads these top-level imports; a missing torch fails below, in one line
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torchvision.models import resnet18
except ImportError as err:
    torch = None
    IMPORT_ERROR = str(err)

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
EVAL_BATCH = 1000
SEED = 0
CHECKPOINT = "checkpoint.pt"


def build_model() -> nn.Module:
    model = resnet18(num_classes=10)
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW -> float, standardized with CIFAR-10's channel statistics."""
    mean = torch.tensor(MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random 32x32 crops of the 4-pixel zero-padded images and random horizontal flips."""
    n = images.shape[0]
    padded = F.pad(images, (4, 4, 4, 4))
    offsets = torch.randint(0, 9, (2, n), generator=generator).to(images.device)
    flips = (torch.rand(n, generator=generator) < 0.5).to(images.device)
    base = torch.arange(32, device=images.device)
    rows = (offsets[0][:, None] + base)[:, None, :, None]
    cols = offsets[1][:, None] + base
    cols = torch.where(flips[:, None], cols.flip(1), cols)[:, None, None, :]
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    channels = torch.arange(3, device=images.device)[None, :, None, None]
    return padded[batch, channels, rows, cols]


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
                labels: torch.Tensor, batch_size: int, epoch: int) -> float:
    """One pass in a per-epoch seeded order, so a resumed trial sees the same batches."""
    generator = torch.Generator().manual_seed(SEED * 1000 + epoch)
    order = torch.randperm(len(images), generator=generator).to(images.device)
    model.train()
    total, count = torch.zeros((), device=images.device), 0
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        inputs = normalize(augment(images[index], generator))
        loss = F.cross_entropy(model(inputs), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(index)
        count += len(index)
    return float(total) / max(count, 1)


def evaluate(model: nn.Module, images: torch.Tensor,
             labels: torch.Tensor) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) on the validation images."""
    model.eval()
    loss, correct = torch.zeros((), device=images.device), torch.zeros((), device=images.device)
    with torch.no_grad():
        for start in range(0, len(images), EVAL_BATCH):
            logits = model(normalize(images[start:start + EVAL_BATCH]))
            target = labels[start:start + EVAL_BATCH]
            loss += F.cross_entropy(logits, target, reduction="sum")
            correct += (logits.argmax(1) == target).sum()
    return float(correct) / len(images), float(loss) / len(images)


def load_checkpoint(path: Path | None, model: nn.Module, optimizer: torch.optim.Optimizer,
                    device: torch.device) -> int:
    """The last finished epoch (0 without a checkpoint), with model and optimizer restored."""
    if path is None or not path.is_file():
        return 0
    state = torch.load(path, map_location=device, weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return int(state["epoch"])


def save_checkpoint(path: Path | None, model: nn.Module, optimizer: torch.optim.Optimizer,
                    epoch: int) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "epoch": epoch}, tmp)
    tmp.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch_size", type=int, required=True)
    parser.add_argument("--momentum", type=float, required=True)
    parser.add_argument("--weight_decay", type=float, required=True)
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--epochs", type=int, default=27)
    parser.add_argument("--dataset_path", type=str, default=None,
                        help="local data folder (default $STBENCH_DATA_DIR or ~/.cache/stbench)")
    parser.add_argument("--st_checkpoint_dir", type=str, default=None)
    args, _ = parser.parse_known_args()
    if torch is None:
        sys.exit(f"resnet_cifar10 needs PyTorch and torchvision ({IMPORT_ERROR}); "
                 "install them, e.g. pip install torch torchvision")
    try:
        folder, cache_hit = ensure_cifar10(args.dataset_path)
        x_train, y_train, x_val, y_val = load_train_val(folder)
    except DatasetError as err:
        sys.exit(f"resnet_cifar10: {err}")

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(SEED)
    model = build_model().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                                weight_decay=args.weight_decay)
    checkpoint = Path(args.st_checkpoint_dir) / CHECKPOINT if args.st_checkpoint_dir else None
    start = load_checkpoint(checkpoint, model, optimizer, device)
    if start >= args.epochs:
        return
    images, labels = (torch.from_numpy(np.ascontiguousarray(a)).to(device)
                      for a in (x_train, y_train))
    val_images, val_labels = (torch.from_numpy(np.ascontiguousarray(a)).to(device)
                              for a in (x_val, y_val))
    batch_size = max(1, min(args.batch_size, len(images)))
    report = Reporter()
    for epoch in range(start + 1, args.epochs + 1):
        began = time.monotonic()
        train_loss = train_epoch(model, optimizer, images, labels, batch_size, epoch)
        accuracy, val_loss = evaluate(model, val_images, val_labels)
        save_checkpoint(checkpoint, model, optimizer, epoch)
        report(epoch=epoch, val_accuracy=accuracy, val_loss=val_loss, train_loss=train_loss,
               cache_hit=int(cache_hit), epoch_seconds=time.monotonic() - began)


if __name__ == "__main__":
    main()
