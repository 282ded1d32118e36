"""The training half of resnet_cifar10: model, precision, device-side augmentation, batching.

Kept apart from the script so that stays short; importing this module imports torch.

- **Fixed shapes.** With `fixed_shapes` the last partial training batch is dropped (a
  different remainder each epoch, as the order is reshuffled) and evaluation runs in batches
  of the training batch size with the last one padded, so cuDNN autotuning
  (`cudnn.benchmark`) meets one input shape per trial instead of three.
- **Precision.** bf16 autocast where the GPU has native bf16, else fp16 autocast with a
  gradient scaler (T4 has no bf16); channels_last on CUDA. The scaler's state is part of
  the checkpoint, so a resumed fp16 trial keeps its loss scale.
- **Randomness.** Every random stream (initial weights, each epoch's order, each epoch's
  crops and flips) has its own seed derived from the trial's seed with numpy's SeedSequence;
  order and augmentation are drawn by generators on the training device, so no index tensor
  is built on the CPU and copied each batch, and a resumed trial redraws the same batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet18

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
EVAL_BATCH = 1000  # the evaluation batch without fixed shapes
INIT_STREAM, ORDER_STREAM, AUGMENT_STREAM = 0, 1, 2
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}


def stream_seed(seed: int, stream: int, epoch: int = 0) -> int:
    """The seed of one random stream of a trial (and of one epoch of it).

    `SeedSequence(seed, spawn_key=(stream, epoch))` is the grandchild that
    `SeedSequence(seed).spawn(...)[stream].spawn(...)[epoch]` returns, so streams and epochs
    are independent, and epoch e's seed needs no replay of the epochs before it.
    """
    state = np.random.SeedSequence(seed, spawn_key=(stream, epoch)).generate_state(1, np.uint64)
    return int(state[0])


@dataclass(frozen=True)
class Precision:
    """How a trial computes: the autocast dtype (None: fp32) and the memory format."""

    device: torch.device
    dtype: torch.dtype | None
    channels_last: bool

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None)

    def describe(self) -> str:
        names = {torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast + grad scaler"}
        layout = "channels_last" if self.channels_last else "NCHW"
        return f"{names.get(self.dtype, 'fp32')}, {layout}"


def resolve_precision(amp: str, channels_last: str, device: torch.device,
                      native_bf16: bool) -> Precision:
    """The precision that `--amp` and `--channels_last` ask for on this device.

    `auto` means on for CUDA and off on the CPU: bf16 when the GPU has it natively, else fp16.
    `native_bf16` must exclude emulation: torch's `is_bf16_supported()` says yes on a T4,
    where bf16 is emulated and slower than fp32.
    """
    cuda = device.type == "cuda"
    if amp == "auto":
        amp = ("bf16" if native_bf16 else "fp16") if cuda else "off"
    if amp == "bf16" and cuda and not native_bf16:
        raise ValueError("--amp bf16: this GPU has no native bf16; use --amp fp16 or auto")
    if amp not in AUTOCAST_DTYPES:
        raise ValueError(f"--amp {amp}: choose auto, {', '.join(AUTOCAST_DTYPES)}")
    layout = cuda if channels_last == "auto" else channels_last == "on"
    return Precision(device=device, dtype=AUTOCAST_DTYPES[amp], channels_last=layout)


def build_model() -> nn.Module:
    """torchvision's ResNet-18 for 32x32 images: 3x3 stride-1 first convolution, no max-pool."""
    model = resnet18(num_classes=10)
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random 32x32 crops of the 4-pixel zero-padded images and random horizontal flips.

    The offsets and flips are drawn by `generator`, which lives on the images' device.
    """
    n, device = images.shape[0], images.device
    padded = F.pad(images, (4, 4, 4, 4))
    offsets = torch.randint(0, 9, (2, n), generator=generator, device=device)
    flips = torch.rand(n, generator=generator, device=device) < 0.5
    base = torch.arange(32, device=device)
    rows = (offsets[0][:, None] + base)[:, None, :, None]
    cols = offsets[1][:, None] + base
    cols = torch.where(flips[:, None], cols.flip(1), cols)[:, None, None, :]
    batch = torch.arange(n, device=device)[:, None, None, None]
    channels = torch.arange(3, device=device)[None, :, None, None]
    return padded[batch, channels, rows, cols]


def pad_to_multiple(images: torch.Tensor, size: int) -> torch.Tensor:
    """The images with zero images appended up to a multiple of `size`."""
    missing = -len(images) % size
    if not missing:
        return images
    return torch.cat([images, images.new_zeros((missing, *images.shape[1:]))])


class Trainer:
    """Model, optimizer and gradient scaler of one trial, run at one precision."""

    def __init__(self, precision: Precision, lr: float, momentum: float, weight_decay: float,
                 seed: int) -> None:
        self.precision = precision
        self.seed = seed
        device = precision.device
        torch.manual_seed(stream_seed(seed, INIT_STREAM))  # the initial weights
        model = build_model().to(device)
        if precision.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum,
                                         weight_decay=weight_decay)
        self.scaler = torch.amp.GradScaler(device.type,
                                           enabled=precision.dtype == torch.float16)
        # made once: a tensor built from Python floats per batch is a host-to-device copy
        self.mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1) * 255.0
        self.std = torch.tensor(STD, device=device).view(1, 3, 1, 1) * 255.0

    def generator(self, stream: int, epoch: int) -> torch.Generator:
        generator = torch.Generator(device=self.precision.device)
        return generator.manual_seed(stream_seed(self.seed, stream, epoch))

    def inputs(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 NCHW -> float, standardized with CIFAR-10's statistics, in the model's layout."""
        inputs = (images.float() - self.mean) / self.std
        if self.precision.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        return inputs

    def train_epoch(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
                    epoch: int, fixed_shapes: bool = True) -> float:
        """One pass in the epoch's seeded order; the mean training loss over the steps taken."""
        device = images.device
        order = torch.randperm(len(images), generator=self.generator(ORDER_STREAM, epoch),
                               device=device)
        crops = self.generator(AUGMENT_STREAM, epoch)
        end = len(order) - len(order) % batch_size if fixed_shapes else len(order)
        self.model.train()
        total = torch.zeros((), device=device)
        for start in range(0, end, batch_size):
            index = order[start:start + batch_size]
            inputs = self.inputs(augment(images[index], crops))
            with self.precision.autocast():
                loss = F.cross_entropy(self.model(inputs), labels[index])
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            total += loss.detach().float() * len(index)
        return float(total) / max(end, 1)

    def evaluate(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
                 fixed_shapes: bool = True) -> tuple[float, float]:
        """(accuracy, mean cross-entropy) on the validation images.

        With fixed shapes the batches have the training batch size, the last one padded
        and its padding's outputs dropped; else EVAL_BATCH images and a smaller last batch.
        """
        n = len(images)
        if fixed_shapes:
            images = pad_to_multiple(images, batch_size)
        else:
            batch_size = EVAL_BATCH
        self.model.eval()
        device = images.device
        loss, correct = torch.zeros((), device=device), torch.zeros((), device=device)
        with torch.no_grad(), self.precision.autocast():
            for start in range(0, n, batch_size):
                logits = self.model(self.inputs(images[start:start + batch_size]))
                logits = logits[:n - start].float()
                target = labels[start:start + batch_size]
                loss += F.cross_entropy(logits, target, reduction="sum")
                correct += (logits.argmax(1) == target).sum()
        return float(correct) / n, float(loss) / n

    def state_dict(self, epoch: int) -> dict[str, Any]:
        """What a resumed trial needs: weights, momentum buffers, loss scale and the epoch."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(), "epoch": epoch}

    def load_state_dict(self, state: dict[str, Any]) -> int:
        """Restore a checkpoint; returns its last finished epoch."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):  # absent in checkpoints of fp32 trials and older versions
            self.scaler.load_state_dict(state["scaler"])
        return int(state["epoch"])
