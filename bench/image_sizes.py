"""Sizes of the role images, their largest layers and, per distribution, what the
orchestrator image holds (target: orchestrator <= 400 MB); the GPU trainer too when
`make build GPU=1` built it.

    python bench/image_sizes.py [--write]      # after `make build`
"""

from __future__ import annotations

import argparse
import json
import time

import docker
from docs_section import publish  # noqa: E402  (this folder)

SECTION = "## Image sizes (bench/image_sizes.py)"
ORCHESTRATOR, TRAINER = "stbench-orchestrator:latest", "stbench-trainer:latest"
IMAGES = (ORCHESTRATOR, TRAINER, "python:3.11-slim")
GPU_IMAGE = "stbench-trainer-gpu:latest"  # built on request only
TARGET_MB = 400
ROWS = 14  # the largest distributions, then the rest in one row
# bytes per installed distribution: the files of its RECORD that the image holds
PER_DISTRIBUTION = """
import importlib.metadata, json, os, re
sizes = {}
for dist in importlib.metadata.distributions():
    total = 0
    for entry in dist.files or ():
        path = dist.locate_file(entry)
        if os.path.isfile(path) and not os.path.islink(path):
            total += os.path.getsize(path)
    sizes[re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower()] = total
print(json.dumps(sizes))
"""
# why the largest ones are in the orchestrator image: what loads them
WHY = {
    "scipy": "scikit-learn, statsmodels, stbench's GP searchers",
    "numpy": "everything numeric",
    "pandas": "Syne Tune, results tables",
    "statsmodels": "Syne Tune's KDE searcher (TPE, BOHB): `import statsmodels.api`",
    "scikit-learn": "stbench's GP searchers, the simulated back-end's surrogate, CQR",
    "matplotlib": "the plots of every study's report",
    "xgboost-cpu": "Syne Tune's BORE classifier (BORE, ASHABORE): `import xgboost`",
    "pillow": "matplotlib's PNG output",
    "botocore": "the SageMaker back-end (API models of the services stbench calls)",
    "narwhals": "scikit-learn's data frame handling",
    "huggingface-hub": "Syne Tune's blackbox repository (CQR, simulated back-end)",
    "filelock": "huggingface-hub",
    "pyyaml": "benchmark YAML files",
    "kiwisolver": "matplotlib's layout",
    "stbench": "stbench",
    "syne-tune": "the schedulers",
}


def distribution_sizes(client: docker.DockerClient, image: str) -> dict[str, int]:
    out = client.containers.run(image, ["-c", PER_DISTRIBUTION], entrypoint="python",
                                remove=True)
    return json.loads(out.decode().strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = parser.parse_args()
    client = docker.from_env()
    lines = [SECTION, "", f"Measured on {time.strftime('%Y-%m-%d')} (`docker image inspect`, "
             f"uncompressed). Target: orchestrator image at most {TARGET_MB} MB.", "",
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
    orchestrator = distribution_sizes(client, ORCHESTRATOR)
    trainer = distribution_sizes(client, TRAINER)
    ranked = sorted(orchestrator, key=lambda name: -orchestrator[name])
    lines += ["", "The orchestrator image's venv per distribution (bytes of its files in the "
              "image), and what the trainer image adds of it:", "",
              "| distribution | orchestrator MB | trainer adds MB | loaded by |",
              "|---|---|---|---|"]
    for name in ranked[:ROWS]:
        lines.append(f"| {name} | {orchestrator[name] / 1e6:.1f} | "
                     f"{(trainer.get(name, 0) - orchestrator[name]) / 1e6:.1f} | "
                     f"{WHY.get(name, '')} |")
    rest = ranked[ROWS:]
    lines.append(f"| {len(rest)} others | {sum(orchestrator[n] for n in rest) / 1e6:.1f} | "
                 f"{sum(trainer.get(n, 0) - orchestrator[n] for n in rest) / 1e6:.1f} | |")
    only_trainer = sorted(set(trainer) - set(orchestrator))
    lines.append(f"| {', '.join(only_trainer) or '-'} | 0 | "
                 f"{sum(trainer[n] for n in only_trainer) / 1e6:.1f} | (trainer only) |")
    lines += ["", "The orchestrator image is the trainer's first layers without the trainer's "
              "last dependency layer: images/slim.py moves out of the orchestrator's venv what "
              "it does not load (pip, hf-xet, fontTools but its glyph list, PIL's WebP, AVIF, "
              "colour and font modules, the API models of AWS services stbench does not call, "
              "headers, example data, the byte code of modules it does not import) and cuts "
              "the symbol tables off the shared objects of both. What is left is loaded by "
              "some method or back-end; a test runs every method in the image. Syne Tune's "
              "statsmodels and "
              "xgboost stay: TPE and BOHB import `statsmodels.api`, BORE and ASHABORE import "
              "`xgboost`. Without both the image would still be about 420 MB: SciPy, NumPy "
              "(with an OpenBLAS each), pandas, scikit-learn and matplotlib are what the loop "
              "and the report import. The byte code of the loaded modules (about 50 MB) stays "
              "too: without it the orchestrator's imports took 13.4 s instead of 5.5 s on a "
              "2-core machine, more than the pull of 50 MB saves.", "",
              "`python:3.11-slim` is the base (here the debootstrap stand-in). The images "
              "install Syne Tune with the CPU build of xgboost (`xgboost-cpu`): PyPI's default "
              "xgboost is a CUDA build that adds about 700 MB with its NCCL dependency. "
              "`stbench-trainer-gpu` adds one layer to the trainer: what installing the CUDA "
              "build of PyTorch and torchvision adds to its venv (the CUDA runtime, cuDNN and "
              "NCCL come as nvidia-* wheels).", ""]
    publish(lines, args.write)


if __name__ == "__main__":
    main()
