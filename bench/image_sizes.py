"""Sizes of the role images and their largest layers (target: orchestrator <= 600 MB); the
GPU trainer too when `make build GPU=1` built it.

    python bench/image_sizes.py [--write]      # after `make build`
"""

from __future__ import annotations

import argparse
import time

import docker
from docs_section import publish  # noqa: E402  (this folder)

SECTION = "## Image sizes (bench/image_sizes.py)"
IMAGES = ("stbench-orchestrator:latest", "stbench-trainer:latest", "python:3.11-slim")
GPU_IMAGE = "stbench-trainer-gpu:latest"  # built on request only


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = parser.parse_args()
    client = docker.from_env()
    lines = [SECTION, "", f"Measured on {time.strftime('%Y-%m-%d')} (`docker image inspect`, "
             "uncompressed). Target: orchestrator image at most 600 MB.", "",
             "| image | size MB | largest layers MB |", "|---|---|---|"]
    names = list(IMAGES)
    try:
        client.images.get(GPU_IMAGE)
        names.append(GPU_IMAGE)
    except docker.errors.ImageNotFound:
        pass
    for name in names:
        image = client.images.get(name)
        layers = sorted((h["Size"] for h in image.history() if h["Size"]), reverse=True)[:3]
        largest = ", ".join(f"{size / 1e6:.0f}" for size in layers)
        lines.append(f"| `{name}` | {image.attrs['Size'] / 1e6:.0f} | {largest} |")
    lines += ["", "`python:3.11-slim` is the base (here the debootstrap stand-in). The images "
              "install Syne Tune with the CPU build of xgboost (`xgboost-cpu`): PyPI's default "
              "xgboost is a CUDA build that adds about 700 MB with its NCCL dependency. "
              "`stbench-trainer-gpu` adds one layer to the trainer: what installing the CUDA "
              "build of PyTorch and torchvision adds to its venv (the CUDA runtime, cuDNN and "
              "NCCL come as nvidia-* wheels).", ""]
    publish(lines, args.write)


if __name__ == "__main__":
    main()
