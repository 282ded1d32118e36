"""One GPU per trial on a multi-GPU machine: trials sharing an instance (local processes, or
local trainer containers) each see one device, the least busy, as SageMaker gives each trial
its own instance. Without GPUs nothing changes."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterable

HOST_GPUS_ENV = "STBENCH_HOST_GPUS"  # the host's GPUs, for an orchestrator in a container


def visible_gpus() -> list[str]:
    """The GPUs trials may use: those the host named for us, else those in
    $CUDA_VISIBLE_DEVICES if set, else every one `nvidia-smi -L` lists; empty on a machine
    without NVIDIA GPUs."""
    given = os.environ.get(HOST_GPUS_ENV, os.environ.get("CUDA_VISIBLE_DEVICES"))
    if given is not None:
        return [d.strip() for d in given.split(",") if d.strip() and d.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True,
                                 timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(listing.splitlines()) if line.startswith("GPU ")]


def least_busy(gpus: list[str], in_use: Iterable[str | None]) -> str | None:
    """The GPU with the fewest running trials (the first on a tie); None without GPUs."""
    if not gpus:
        return None
    load = Counter(gpu for gpu in in_use if gpu is not None)
    return min(gpus, key=lambda gpu: (load[gpu], gpus.index(gpu)))
