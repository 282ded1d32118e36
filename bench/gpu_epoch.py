"""resnet_cifar10's start-up, first-epoch and steady-epoch seconds for each speed-up.

Each run is one process of the real training script, as a trial is, so `startup_seconds`
counts from the process start; runs go round-robin over the variants, repeat r with seed r,
and the table shows medians over the repeats (steady epoch: the median epoch after the first).
One untimed warm-up run first fills the file cache, which the first run would pay alone.

    python bench/gpu_epoch.py --tiny [--write]   # any machine: 200 generated images
    python bench/gpu_epoch.py [--write]          # a GPU: 45,000/5,000 generated images

`--cpu` hides the GPUs. `--write` replaces this bench's GPU or CPU section of
docs/performance.md (by the device the runs used), after every finished round of repeats.
bench/gpu_check.sh is the prepared run for a GPU machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from docs_section import publish  # noqa: E402  (this folder)

from stbench.benchmarks.cifar10_data import DATA_DIR_ENV, URL_ENV, write_tiny_cifar10  # noqa: E402
from stbench.model.benchmark import BUILTIN_DIR  # noqa: E402

SCRIPT = BUILTIN_DIR / "resnet_cifar10.py"
GPU_SECTION = "## resnet_cifar10 epochs on a GPU (bench/gpu_epoch.py)"
CPU_SECTION = "## resnet_cifar10 epochs on the CPU (bench/gpu_epoch.py)"
METRIC_TAG = "[tune-metric]: "
DESCRIPTION_TAG = "resnet_cifar10: "
NO_NETWORK_URL = "http://127.0.0.1:9/cifar-10-python.tar.gz"  # never download
HYPERPARAMETERS = ("--momentum", "0.9", "--weight_decay", "5e-4", "--lr", "0.05")
NEXT_STEPS = (
    "To try next, only if start-up still dominates a one-epoch trial: (1) torch.compile of the "
    "model with its inductor cache (`TORCHINDUCTOR_CACHE_DIR`) in the warm-pool cache, "
    "measured cold and warm, since compiling costs tens of seconds the first time; (2) the "
    "CUDA kernel cache (`CUDA_CACHE_PATH`) in the warm-pool cache, which pays only where "
    "kernels are JIT-compiled from PTX. PyTorch keeps cuDNN's autotuning results in memory "
    "only, which is why fixed shapes and the cudnn.benchmark row matter.")
GOAL = ("Target on an H200 at batch 128: first epoch at most 6 s and steady epoch at most 2.5 s. "
        "History, not rerunnable: the script's first CUDA version took 20.4 s and 4.4 s there "
        "(one run outside Docker, before 2026-11-30; that version is gone).")


@dataclass(frozen=True)
class Variant:
    """One setting of the script's speed switches."""

    name: str
    fixed_shapes: bool
    channels_last: bool
    amp: bool
    cudnn_benchmark: bool = True
    cuda_only: bool = False  # cudnn.benchmark means nothing on the CPU

    def args(self, cuda: bool) -> list[str]:
        on_off = {True: "on", False: "off"}
        amp = ("auto" if cuda else "bf16") if self.amp else "off"  # auto is off on the CPU
        return ["--fixed_shapes", on_off[self.fixed_shapes],
                "--channels_last", on_off[self.channels_last], "--amp", amp,
                "--cudnn_benchmark", on_off[self.cudnn_benchmark]]


VARIANTS = (
    Variant("fp32 NCHW, variable shapes (baseline)", False, False, False),
    Variant("fixed shapes", True, False, False),
    Variant("+ channels_last", True, True, False),
    Variant("+ AMP (the default on GPUs)", True, True, True),
    Variant("+ AMP, cudnn.benchmark off", True, True, True, cudnn_benchmark=False,
            cuda_only=True),
)


@dataclass
class Runs:
    """What the runs of one variant reported."""

    startup: list[float] = field(default_factory=list)
    first: list[float] = field(default_factory=list)
    steady: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)

    def add(self, reports: list[dict]) -> None:
        self.startup.append(reports[0]["startup_seconds"])
        self.first.append(reports[0]["epoch_seconds"])
        self.steady.append(statistics.median(r["epoch_seconds"] for r in reports[1:]))
        self.accuracy.append(reports[-1]["val_accuracy"])

    def one_epoch_trial(self) -> float:
        return statistics.median(s + f for s, f in zip(self.startup, self.first, strict=True))


@dataclass(frozen=True)
class Setup:
    n_train: int
    n_val: int
    batch_size: int
    epochs: int
    env: dict[str, str]
    cuda: bool = False  # known after the warm-up run


def run_once(setup: Setup, variant: Variant, seed: int, epochs: int) -> tuple[list[dict], str]:
    """The script's reports and its description line (device, precision) for one run."""
    command = [sys.executable, str(SCRIPT), "--batch_size", str(setup.batch_size),
               *HYPERPARAMETERS, "--epochs", str(epochs), "--seed", str(seed),
               *variant.args(setup.cuda)]
    result = subprocess.run(command, env=setup.env, capture_output=True, text=True,
                            timeout=3600, cwd=REPO)
    if result.returncode != 0:
        sys.exit(f"gpu_epoch: {variant.name} failed:\n{result.stderr[-3000:]}")
    lines = result.stdout.splitlines()
    reports = [json.loads(line[len(METRIC_TAG):]) for line in lines
               if line.startswith(METRIC_TAG)]
    description = next(line[len(DESCRIPTION_TAG):] for line in lines
                       if line.startswith(DESCRIPTION_TAG))
    return reports, description


def device_name(description: str) -> str:
    """'NVIDIA H200' from 'cuda (NVIDIA H200), torch ...'; 'CPU (N cores)' on the CPU."""
    where = description.split(", torch ")[0]
    if where.startswith("cuda ("):
        return where[len("cuda ("):-1]
    return f"CPU ({os.cpu_count()} cores)"


def table(setup: Setup, results: dict[Variant, Runs], descriptions: dict[Variant, str],
          repeats: int) -> list[str]:
    some = next(iter(descriptions.values()))
    torch_version = some.split(", torch ")[1].split(",")[0]
    lines = [GPU_SECTION if setup.cuda else CPU_SECTION, "",
             f"Measured on {time.strftime('%Y-%m-%d')} on {device_name(some)}, torch "
             f"{torch_version}: generated data of {setup.n_train:,} training and "
             f"{setup.n_val:,} validation images, batch {setup.batch_size}, "
             f"{setup.epochs} epochs, median of {repeats} run(s) (seeds 0 to {repeats - 1}). "
             "Start-up: process start to the first training step (the script's "
             "`startup_seconds`); first and steady epoch: its `epoch_seconds` (epoch 1; median "
             "of the later ones). A one-epoch trial, which multi-fidelity methods run most, "
             "costs start-up + first epoch.", "",
             "| variant | as run | start-up s | first epoch s | steady epoch s | one-epoch trial "
             "vs baseline | steady vs baseline | final val_accuracy (min-max) |",
             "|---|---|---|---|---|---|---|---|"]
    base = results[VARIANTS[0]]
    for variant, runs in results.items():
        as_run = descriptions[variant].split(", ", 2)[2].rsplit(", batch", 1)[0]
        lines.append(
            f"| {variant.name} | {as_run} | {statistics.median(runs.startup):.2f} | "
            f"{statistics.median(runs.first):.2f} | {statistics.median(runs.steady):.2f} | "
            f"{runs.one_epoch_trial() / base.one_epoch_trial():.2f}x | "
            f"{statistics.median(runs.steady) / statistics.median(base.steady):.2f}x | "
            f"{statistics.median(runs.accuracy):.3f} ({min(runs.accuracy):.3f}-"
            f"{max(runs.accuracy):.3f}) |")
    lines.append("")
    if setup.cuda:
        amp_on, amp_off = (results.get(v) for v in VARIANTS[3:5])
        if amp_on and amp_off:
            lines.append(
                f"cudnn.benchmark off vs on (with AMP): one-epoch trial "
                f"{amp_off.one_epoch_trial() / amp_on.one_epoch_trial():.2f}x, steady epoch "
                f"{statistics.median(amp_off.steady) / statistics.median(amp_on.steady):.2f}x "
                "(below 1: off is faster). The script's default is on.")
            lines.append("")
        lines += [GOAL, "", NEXT_STEPS, ""]
    else:
        lines += ["On the CPU, AMP means bf16 autocast (`--amp bf16`: `auto` is off there) and "
                  "cudnn.benchmark does not apply; these rows keep the bench working, GPU "
                  "figures are in the GPU section.", ""]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true",
                        help="200 generated images, 2 epochs, 1 repeat (CPU-sized)")
    parser.add_argument("--cpu", action="store_true", help="hide the GPUs")
    parser.add_argument("--repeats", type=int, help="runs per variant (default 3, tiny 1)")
    parser.add_argument("--epochs", type=int, help="epochs per run, at least 2 (default 3, "
                        "tiny 2)")
    parser.add_argument("--batch_size", type=int, default=None,
                        help="default 128, tiny 32")
    parser.add_argument("--n_images", type=int, default=None,
                        help="generated images, a tenth for validation (default 50,000, tiny 200)")
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = parser.parse_args()
    n_images = args.n_images or (200 if args.tiny else 50_000)
    repeats = args.repeats or (1 if args.tiny else 3)
    epochs = max(2, args.epochs or (2 if args.tiny else 3))
    env = {**os.environ, URL_ENV: NO_NETWORK_URL}
    env.pop("SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY", None)
    if args.cpu:
        env["CUDA_VISIBLE_DEVICES"] = ""
    with tempfile.TemporaryDirectory(prefix="gpu-epoch-") as tmp:
        write_tiny_cifar10(Path(tmp), n_train=n_images, n_test=10)
        env[DATA_DIR_ENV] = tmp
        setup = Setup(n_images - n_images // 10, n_images // 10,
                      args.batch_size or (32 if args.tiny else 128), epochs, env)
        warm_up = replace(setup, batch_size=max(setup.batch_size, 512))  # fewer steps
        _, description = run_once(warm_up, VARIANTS[1], seed=0, epochs=1)
        cuda = description.startswith("cuda")
        setup = replace(setup, cuda=cuda)
        variants = [v for v in VARIANTS if cuda or not v.cuda_only]
        results: dict[Variant, Runs] = {v: Runs() for v in variants}
        descriptions: dict[Variant, str] = {}
        print(f"gpu_epoch: {device_name(description)}, {len(variants)} variants x {repeats} "
              f"repeat(s), {epochs} epochs", file=sys.stderr)
        for repeat in range(repeats):
            for variant in variants:
                reports, descriptions[variant] = run_once(setup, variant, repeat, epochs)
                results[variant].add(reports)
                print(f"gpu_epoch: {variant.name}, seed {repeat}: " + ", ".join(
                    f"{key} {reports[0][key]:.2f}" for key in ("startup_seconds",
                                                               "epoch_seconds")),
                      file=sys.stderr)
            lines = table(setup, results, descriptions, repeat + 1)
            if args.write and repeat + 1 < repeats:  # a cut-off run still leaves a table
                publish(lines, write=True)
        publish(lines, args.write)


if __name__ == "__main__":
    main()
