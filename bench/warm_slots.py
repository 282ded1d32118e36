"""Warm slots of the local Docker adapter: reuse rate and trial start latency, warm vs cold.

1. Reuse: a `--backend docker --warm_pool` study (synthetic_curves, RS, 2 workers, N trials);
   reuse rate = share of trials after the first n_workers that started on a warm slot.
2. Latency: K jobs one after another without keep-alive (cold: a new instance container
   each) and K with keep-alive (warm: the same instance), measured from CreateTrainingJob to
   the trainer process running (job start) and to the first metric report.

    python bench/warm_slots.py [--trials 20] [--jobs 8] [--write]

Needs a Docker engine and the trainer image (`make build`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from docs_section import publish  # noqa: E402  (this folder)

from stbench.backends.jobs.job_requests import JobTemplate, trial_request  # noqa: E402
from stbench.backends.jobs.local_docker import LocalDockerJobService  # noqa: E402
from stbench.cli.main import main as stbench_main  # noqa: E402
from stbench.model.job_statuses import COMPLETED, FAILED  # noqa: E402

IMAGE = "stbench-trainer:latest"
SECTION = "## Warm slots (bench/warm_slots.py)"
CONFIG = {"x": 1.0, "log_lr": -2.5, "width": 32, "epochs": 2, "epoch_duration": 0.05,
          "failure_probability": 0.0}


def reuse_rate(trials: int, n_workers: int = 2) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as root:
        code = stbench_main([
            "run", "--benchmark", "synthetic_curves", "--method", "RS", "--backend", "docker",
            "--warm_pool", "--max_wallclock_time", "600", "--max_num_trials", str(trials),
            "--n_workers", str(n_workers), "--experiment_tag", "warm", "--results_root", root,
            "--epochs", "3", "--epoch_duration", "0.1", "--random_seed", "0",
        ])
        folder = Path(root) / "warm" / "synthetic_curves" / "RS" / "0"
        rows = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    first_row = {}
    for row in rows:
        first_row.setdefault(row["trial_id"], row)
    later = [r for t, r in sorted(first_row.items())][n_workers:]
    reused = sum(1 for r in later if r.get("started_on_warm_pool_of"))
    return {"exit": code, "trials": len(first_row), "after_first": len(later),
            "reused": reused, "rate": reused / max(1, len(later))}


def latencies(jobs: int, keep_alive: int) -> tuple[list[float], list[float]]:
    """Seconds from create to trainer start, and from create to first report, per job."""
    starts, firsts = [], []
    with tempfile.TemporaryDirectory() as tmp:
        service = LocalDockerJobService(work_dir=Path(tmp) / "jobs")
        template = JobTemplate(image=IMAGE, benchmark="synthetic_curves",
                               instance_type="ml.c5.large",
                               checkpoint_root=f"file://{tmp}/ckpt/",
                               output_root=f"file://{tmp}/out/", keep_alive_seconds=keep_alive)
        try:
            for index in range(jobs + 1):  # job 0 warms the slot up; it is not counted
                name = f"lat-{keep_alive}-{index}"
                asked = time.time()
                service.create_training_job(trial_request(template, name, index, CONFIG))
                first = None
                while True:
                    reports = service.read_metrics([name]).get(name, [])
                    if reports and first is None:
                        first = reports[0]["st_trainer_timestamp"]
                    status = service.describe_training_jobs([name])[name]
                    if status["TrainingJobStatus"] in (COMPLETED, FAILED):
                        break
                    service.wait_for_activity(0.2)
                if index > 0:
                    starts.append(status["TrainingStartTime"] - asked)
                    firsts.append((first or time.time()) - asked)
        finally:
            service.close()
    return starts, firsts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = parser.parse_args()

    reuse = reuse_rate(args.trials)
    print(f"reuse: {reuse}", flush=True)
    cold_start, cold_first = latencies(args.jobs, keep_alive=0)
    warm_start, warm_first = latencies(args.jobs, keep_alive=60)
    med = statistics.median
    lines = [
        SECTION, "",
        f"Measured on {time.strftime('%Y-%m-%d')} with the local Docker engine and "
        f"`{IMAGE}`. Reuse: a `--backend docker --warm_pool` study of {reuse['trials']} "
        f"synthetic_curves trials on 2 workers. Latency: medians of {args.jobs} sequential "
        "jobs each, from CreateTrainingJob to the trainer process running (job start) and "
        "to its first metric report.", "",
        "| measure | cold (new instance container) | warm (reused slot) | warm / cold |",
        "|---|---|---|---|",
        f"| job start, s | {med(cold_start):.3f} | {med(warm_start):.3f} | "
        f"{med(warm_start) / med(cold_start):.2f} |",
        f"| first report, s | {med(cold_first):.3f} | {med(warm_first):.3f} | "
        f"{med(warm_first) / med(cold_first):.2f} |",
        "",
        f"Reuse rate after the first 2 trials: {reuse['reused']}/{reuse['after_first']} = "
        f"{reuse['rate']:.0%}. A warm slot saves starting the instance container; the first "
        "report still waits for the trainer's and the script's Python imports (most of the "
        "remaining second), which a warm slot does not keep loaded yet.", "",
    ]
    publish(lines, args.write)


if __name__ == "__main__":
    main()
