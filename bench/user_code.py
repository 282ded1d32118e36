"""A user benchmark's folder on the Docker back-end's warm slots: what its requirements cost.

Each round starts a fresh local job service with keep-alive and runs one job after another
on it: the first lands on a new instance (unpack the `code` channel, `pip install` the
requirements.txt, run the script), the next ones on the reused instance, whose warm-pool
cache holds the installed requirements (pip is skipped). Measured: seconds from
CreateTrainingJob to the first metric report. The same rounds without a requirements.txt
separate pip's share from the instance start. The requirement is a small wheel shipped in the
benchmark's folder (tests/integration/user_benchmark.py): nothing is downloaded.

    python bench/user_code.py [--rounds 3] [--reused 2] [--write]

Needs a Docker engine and the trainer image (`make build`).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "integration"))

from docs_section import publish  # noqa: E402  (this folder)
from user_benchmark import write_user_benchmark  # noqa: E402

from stbench.backends.jobs.code_upload import publish_code  # noqa: E402
from stbench.backends.jobs.job_requests import JobTemplate, trial_request  # noqa: E402
from stbench.backends.jobs.local_docker import LocalDockerJobService  # noqa: E402
from stbench.model.catalog import load_benchmark  # noqa: E402
from stbench.model.code_package import pack_benchmark  # noqa: E402
from stbench.model.job_statuses import COMPLETED  # noqa: E402

IMAGE = "stbench-trainer:latest"
SECTION = "## User benchmark folders on warm slots (bench/user_code.py)"
CONFIG = {"x": 0.5, "epochs": 1, "sleep": 0.0}
PIP_SECONDS = re.compile(r"installed requirements\.txt into \S+ in ([0-9.]+) s")


def first_report_seconds(service: LocalDockerJobService, template: JobTemplate,
                         name: str) -> tuple[float, str]:
    """(seconds from create to the first report, the job's log)."""
    asked = time.time()
    service.create_training_job(trial_request(template, name, 0, CONFIG))
    first = None
    while True:
        reports = service.read_metrics([name]).get(name, [])
        if reports and first is None:
            first = reports[0]["st_trainer_timestamp"] - asked
        status = service.describe_training_jobs([name])[name]["TrainingJobStatus"]
        if status not in ("InProgress", "Stopping"):
            break
        service.wait_for_activity(0.05)
    log = service.log_tail(name, 200)
    if status != COMPLETED or first is None:
        sys.exit(f"{name} ended {status} without a report:\n{log}")
    return first, log


@dataclass
class Arm:
    """One benchmark folder's measurements."""

    first: list[float] = field(default_factory=list)  # new instance
    again: list[float] = field(default_factory=list)  # reused instance
    pip: list[float] = field(default_factory=list)  # the trainer's own pip timing
    skipped: list[bool] = field(default_factory=list)


def one_round(folder: Path, tmp: Path, run: int, reused: int, arm: Arm) -> None:
    """A fresh job service: one trial on a new instance, then `reused` on the same one."""
    package = pack_benchmark(load_benchmark(str(folder)))
    template = JobTemplate(
        image=IMAGE, benchmark=package.benchmark_file, instance_type="ml.c5.xlarge",
        checkpoint_root=f"file://{tmp}/ckpt/", output_root=f"file://{tmp}/out/",
        keep_alive_seconds=600, inputs={"code": publish_code(package, f"file://{tmp}/study")})
    service = LocalDockerJobService(work_dir=tmp / f"jobs-{folder.stem}-{run}")
    try:
        seconds, log = first_report_seconds(service, template, f"u{run}-0")
        arm.first.append(seconds)
        arm.pip += [float(m) for m in PIP_SECONDS.findall(log)]
        for index in range(1, reused + 1):
            seconds, log = first_report_seconds(service, template, f"u{run}-{index}")
            arm.again.append(seconds)
            arm.skipped.append("already installed" in log and "pip:" not in log)
    finally:
        service.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reused", type=int, default=2, help="reused-instance trials a round")
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with_requirements = write_user_benchmark(Path(tmp), "with_req")
        without = write_user_benchmark(Path(tmp), "without_req")
        (without.parent / "requirements.txt").unlink()
        (without.parent / "train.py").write_text(  # the same script, its constant inlined
            (without.parent / "train.py").read_text().replace(
                "import stbench_tinydep", "import types\nstbench_tinydep = types."
                "SimpleNamespace(OFFSET=0.25, __file__='inline')"))
        folders = {"requirements.txt (1 local wheel)": with_requirements,
                   "no requirements.txt": without}
        measured = {label: Arm() for label in folders}
        for run in range(args.rounds):  # the arms alternate, so both see the same load
            for label, yaml in folders.items():
                one_round(yaml, Path(tmp), run, args.reused, measured[label])
    lines = [SECTION, "",
             f"Measured on {time.strftime('%Y-%m-%d')} with `python bench/user_code.py --rounds "
             f"{args.rounds} --reused {args.reused} --write`. "
             f"Seconds from CreateTrainingJob to the first report, median over {args.rounds} "
             f"rounds (each a fresh job service: 1 trial on a new instance, then {args.reused} "
             "on the reused one), `--backend docker` with keep-alive, trainer image "
             f"`{IMAGE}`, a user benchmark folder as the `code` channel; the two folders "
             "alternate, on a 2-core machine shared with other work, so single figures are "
             "noisy. pip install: the trainer's own timing of it.", "",
             "| benchmark folder | new instance | reused instance | pip install (new) "
             "| pip skipped when reused |", "|---|---|---|---|---|"]
    for label, arm in measured.items():
        pip = f"{statistics.median(arm.pip):.1f}" if arm.pip else "-"
        skipped = "-" if not arm.pip else f"{sum(arm.skipped)} of {len(arm.skipped)}"
        lines.append(f"| {label} | {statistics.median(arm.first):.2f} | "
                     f"{statistics.median(arm.again):.2f} | {pip} | {skipped} |")
    lines += ["", "On a new instance the trainer unpacks the folder and runs `pip install "
              "--target` into the warm-pool cache; a trial on the reused instance finds the "
              "target (named by requirements.txt's hash) and skips pip (its log says "
              "`already installed`).", ""]
    publish(lines, args.write)


if __name__ == "__main__":
    main()
