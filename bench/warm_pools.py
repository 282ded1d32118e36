"""Warm pools on the local SageMaker endpoint: trials finished and cost in a fixed budget.

One endpoint (`stbench.emulator`) with cold starts scaled down; the same ASHA study of
`synthetic_curves` (`stbench run --backend sagemaker`, fixed --random_seed, 2 workers) runs
with `--warm_pool 1` and a warm-pool quota ("warm" arm), and without warm pools ("cold"
arm), seed by seed, alternating which arm goes first. Per arm, medians over seeds of:
trials whose job ended within the budget, best loss, billable seconds, warm-pool reuses,
retained pool seconds and cost (from the results rows, as `stbench results` reads them),
plus the endpoint's median provisioning time; then warm / cold.

    python bench/warm_pools.py [--seeds 3] [--budget 120] [--scale 15] [--write]
    python bench/warm_pools.py --quick     # 1 seed, 60 s budget: a smoke run (~3 min)

`--scale S`: one second here stands for S seconds on SageMaker; a cold start takes
COLD_ON_SAGEMAKER / S seconds, a warm one WARM_ON_SAGEMAKER / S. Needs a Docker engine, the
trainer image (`make build`) and Debian's docker-registry (the image is pushed to one on a
free 127.0.0.1 port, as `make push REGISTRY=` would).
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from docs_section import publish  # noqa: E402  (this folder)

from stbench.analysis.frame import load_results  # noqa: E402
from stbench.analysis.summary import experiment_costs  # noqa: E402
from stbench.emulator import Emulator, EmulatorConfig  # noqa: E402
from stbench.emulator.account import ensure_bucket, ensure_execution_role  # noqa: E402
from stbench.model.naming import experiment_base, is_trial_job, trial_job_prefix  # noqa: E402

SECTION = "## Warm pools on the SageMaker endpoint (bench/warm_pools.py)"
BENCHMARK, METHOD, INSTANCE = "synthetic_curves", "ASHA", "ml.c5.xlarge"
N_WORKERS, EPOCHS, RANDOM_SEED = 2, 9, 7
# Syne Tune's SageMaker benchmarking guide (resnet_cifar10, ml.g4dn.xlarge, warm pools): the
# first jobs take "about 7 to 8 minutes", later ones on warm pools "only 2 to 3 minutes", so
# a cold start costs about 5 minutes more. The AWS guide gives no figure ("typical startup
# times"); a warm start is assumed to take 30 s.
COLD_ON_SAGEMAKER, WARM_ON_SAGEMAKER = 300.0, 30.0
EPOCH_ON_SAGEMAKER = 7.5  # s per epoch: 9 epochs, about a warm job's 2 minutes
REGISTRY_BINARY = "/usr/bin/docker-registry"
BUCKET = "stbench-warm-pools"
ARMS = ("warm", "cold")
END_MARGIN = 1.0  # s: stops requested this close to the budget's end are the end's own
SLOW_STOP = 3.0  # s from StopTrainingJob to Stopped beyond which a stop is reported
MEASURES = (  # key, row label, format
    ("finished", "trials ended within the budget", "{:.0f}"),
    ("reported", "trials with a report read in the budget", "{:.0f}"),
    ("best", "best loss", "{:.4f}"),
    ("provisioning", "provisioning per job, s (endpoint)", "{:.1f}"),
    ("reused", "trials started on a warm pool", "{:.0f}"),
    ("billable", "billable seconds", "{:.0f}"),
    ("retained", "retained warm-pool seconds", "{:.0f}"),
    ("cost", "cost, USD", "{:.4f}"),
    ("cost_per_trial", "cost per trial ended, USD", "{:.5f}"),
    ("slow_stops", f"stops that took over {SLOW_STOP:g} s", "{:.0f}"),
)


@dataclass(frozen=True)
class Settings:
    seeds: int
    budget: float
    scale: float

    @property
    def cold_start(self) -> float:
        return COLD_ON_SAGEMAKER / self.scale

    @property
    def warm_start(self) -> float:
        return WARM_ON_SAGEMAKER / self.scale

    @property
    def epoch_duration(self) -> float:
        return EPOCH_ON_SAGEMAKER / self.scale


def say(message: str) -> None:
    print(f"warm_pools: {message}", file=sys.stderr, flush=True)


# --- the image, where the endpoint pulls it from ---------------------------------------------


@contextmanager
def registry(root: Path) -> Iterator[str]:
    """Debian's docker-registry on a free loopback port, storing under `root`."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
    config = root / "registry.yml"
    config.write_text(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
                      f"    rootdirectory: {root / 'registry'}\nhttp:\n  addr: {address}\n")
    with (root / "registry.log").open("w") as log:
        process = subprocess.Popen([REGISTRY_BINARY, "serve", str(config)], stdout=log,
                                   stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 20
            while not _listening(address):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"docker-registry did not serve on {address}: "
                                     f"{(root / 'registry.log').read_text()[-300:]}")
                time.sleep(0.1)
            yield address
        finally:
            process.terminate()
            process.wait(timeout=10)


def _listening(address: str) -> bool:
    host, port = address.split(":")
    with socket.socket() as sock:
        return sock.connect_ex((host, int(port))) == 0


@contextmanager
def pushed_trainer(address: str) -> Iterator[str]:
    """`stbench images push` of the local trainer image: the URI it pushed, whose local tag
    is removed afterwards (the image itself stays, as stbench-trainer:latest)."""
    import docker

    command = [sys.executable, "-m", "stbench.cli.main", "images", "push", "--registry",
               address, "--roles", "trainer", "--tag", "latest"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"push failed: {done.stderr.strip()[-500:]}")
    uri = done.stdout.split()[-1]  # "trainer URI"
    try:
        yield uri
    finally:
        docker.from_env().images.remove(uri)


# --- one run: an arm and a seed ----------------------------------------------------------------


def run_study(arm: str, seed: int, settings: Settings, setup: dict[str, str],
              env: dict[str, str], root: Path) -> float:
    """`stbench run` of one experiment in a process of its own; its progress lines are
    echoed with the arm and seed. Returns its wall-clock seconds."""
    command = [
        sys.executable, "-m", "stbench.cli.main", "run", "--benchmark", BENCHMARK,
        "--method", METHOD, "--backend", "sagemaker", "--warm_pool", "1" if arm == "warm" else "0",
        "--image", setup["image"], "--role", setup["role"], "--s3_root", setup["s3_root"],
        "--region", env["AWS_DEFAULT_REGION"], "--instance_type", INSTANCE,
        "--experiment_tag", f"wp-{arm}", "--start_seed", str(seed), "--num_seeds", "1",
        "--random_seed", str(RANDOM_SEED), "--n_workers", str(N_WORKERS),
        "--max_wallclock_time", f"{settings.budget:g}", "--results_root", str(root),
        "--epochs", str(EPOCHS), "--epoch_duration", f"{settings.epoch_duration:g}",
    ]
    start = time.monotonic()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=env, cwd=REPO) as process:
        assert process.stdout is not None
        for line in process.stdout:
            print(f"  {arm} s{seed} | {line.rstrip()}", file=sys.stderr, flush=True)
    if process.returncode != 0:
        raise SystemExit(f"{arm} seed {seed}: stbench run exited {process.returncode}")
    return time.monotonic() - start


def endpoint_jobs(sm: Any, arm: str, seed: int) -> list[dict[str, Any]]:
    """The experiment's trial jobs as the endpoint describes them now."""
    base = experiment_base(f"wp-{arm}", BENCHMARK, METHOD, seed)
    names = [summary["TrainingJobName"]
             for page in sm.get_paginator("list_training_jobs").paginate(
                 NameContains=trial_job_prefix(base), MaxResults=100)
             for summary in page["TrainingJobSummaries"]
             if is_trial_job(base, summary["TrainingJobName"])]
    return [sm.describe_training_job(TrainingJobName=name) for name in names]


def figures(arm: str, seed: int, settings: Settings, root: Path,
            jobs: list[dict[str, Any]]) -> dict[str, float]:
    """One run's figures: reports and cost from the results rows, job times from the endpoint.

    Reports count while their `wallclock_time` is within the budget; billing counts whenever
    it happened (a job the experiment's end stopped is still paid for)."""
    df = load_results(root, f"wp-{arm}")
    df = df[df["seed"] == seed]
    # rows the loop added from reports (a trial it stopped before any has a row without)
    in_budget = df[(df["wallclock_time"] <= settings.budget) & df["loss"].notna()]
    per_trial = df.groupby("trial_id").agg(
        billable=("billable_seconds", "max"), retained=("warm_pool_retained_seconds", "max"),
        reused=("started_on_warm_pool_of", lambda s: s.notna().any()))
    unbilled = int(per_trial["billable"].isna().sum())
    if unbilled:
        say(f"{arm} seed {seed}: {unbilled} trials have no billable seconds in their rows")
    finished = len(ended_within_budget(jobs, settings.budget))
    costs = experiment_costs(df)
    cost = float(costs.sum()) if len(costs) else float("nan")
    out = {
        "finished": float(finished),
        "reported": float(in_budget["trial_id"].nunique()),
        "best": float(in_budget["loss"].min()),
        "provisioning": statistics.median(
            (job["TrainingStartTime"] - job["CreationTime"]).total_seconds()
            for job in jobs if "TrainingStartTime" in job),
        "reused": float(per_trial["reused"].sum()),
        "billable": float(per_trial["billable"].sum()),
        "retained": float(per_trial["retained"].fillna(0).sum()),
        "cost": cost,
        "cost_per_trial": cost / finished if finished else float("nan"),
        "slow_stops": float(len(slow_stops(jobs))),
    }
    out["agrees"] = float(check_against_endpoint(arm, seed, out, jobs))
    return out


def _stop_requested(job: dict[str, Any]) -> float | None:
    for transition in job.get("SecondaryStatusTransitions", []):
        if transition["Status"] == "Stopping":
            return float(transition["StartTime"].timestamp())
    return None


def slow_stops(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Jobs that took longer than SLOW_STOP from their stop request to their end."""
    return [job for job in jobs if (asked := _stop_requested(job)) is not None
            and job["TrainingEndTime"].timestamp() - asked > SLOW_STOP]


def ended_within_budget(jobs: list[dict[str, Any]], budget: float) -> list[dict[str, Any]]:
    """Jobs that reached Completed, or Stopped by the method, before the budget ran out.

    The budget runs from the first job's creation (the loop creates it at once); the jobs
    the experiment's end stops (their stop request comes within END_MARGIN of the budget's
    end) do not count, however quickly they then end."""
    deadline = min(job["CreationTime"].timestamp() for job in jobs) + budget
    return [job for job in jobs if job["TrainingJobStatus"] in ("Completed", "Stopped")
            and job["TrainingEndTime"].timestamp() <= deadline
            and (_stop_requested(job) or 0.0) < deadline - END_MARGIN]


def check_against_endpoint(arm: str, seed: int, out: dict[str, float],
                           jobs: list[dict[str, Any]]) -> bool:
    """Whether the rows' reuses, billable and retained seconds are the endpoint's; any job
    or pool left after the run is reported too."""
    left = [job["TrainingJobName"] for job in jobs
            if job["TrainingJobStatus"] in ("InProgress", "Stopping")
            or job.get("WarmPoolStatus", {}).get("Status") in ("Available", "InUse")]
    if left:
        say(f"{arm} seed {seed}: LEFT RUNNING or pooled after the run: {', '.join(left)}")
    endpoint = {
        "reused": sum(job.get("WarmPoolStatus", {}).get("Status") == "Reused" for job in jobs),
        "billable": sum(job.get("BillableTimeInSeconds", 0) for job in jobs),
        "retained": sum(job.get("WarmPoolStatus", {}).get(
            "ResourceRetainedBillableTimeInSeconds", 0) for job in jobs),
    }
    say(f"{arm} seed {seed}: {len(jobs)} jobs; endpoint vs rows: " + ", ".join(
        f"{key} {value} vs {out[key]:.0f}" for key, value in endpoint.items()))
    return not left and all(value == out[key] for key, value in endpoint.items())


# --- the study and the table -------------------------------------------------------------------


def measure(settings: Settings,
            workdir: Path) -> tuple[dict[str, list[dict[str, float]]], float, float]:
    """Every seed, both arms, on one endpoint; the runs' median wall-clock seconds and the
    median 1-minute load average at their ends (the machine is shared)."""
    import boto3

    quota = {f"{INSTANCE} for training warm pool usage": N_WORKERS}
    config = EmulatorConfig(cold_start_seconds=settings.cold_start,
                            warm_start_seconds=settings.warm_start, quotas=quota,
                            work_dir=workdir / "jobs")
    results: dict[str, list[dict[str, float]]] = {arm: [] for arm in ARMS}
    walls, loads = [], []
    with registry(workdir) as address:
        say(f"registry on {address}; pushing the trainer image")
        with pushed_trainer(address) as image, Emulator(config) as emulator:
            env = {**os.environ, **emulator.environment()}
            setup = {"image": image, "role": ensure_execution_role(env),
                     "s3_root": ensure_bucket(env, BUCKET) + "/warm-pools"}
            sm = boto3.client("sagemaker", endpoint_url=env["AWS_ENDPOINT_URL"],
                              region_name=env["AWS_DEFAULT_REGION"],
                              aws_access_key_id="testing", aws_secret_access_key="testing")
            say(f"endpoint {emulator.endpoint_url}: cold start {settings.cold_start:g} s, warm "
                f"start {settings.warm_start:g} s, warm-pool quota {N_WORKERS}")
            for seed in range(settings.seeds):
                for arm in ARMS if seed % 2 == 0 else ARMS[::-1]:
                    say(f"seed {seed}, {arm} arm: {settings.budget:g} s budget")
                    walls.append(run_study(arm, seed, settings, setup, env, workdir / "results"))
                    loads.append(os.getloadavg()[0])
                    run = figures(arm, seed, settings, workdir / "results",
                                  endpoint_jobs(sm, arm, seed))
                    results[arm].append(run)
                    say(f"seed {seed}, {arm} arm: " + ", ".join(
                        f"{key} {value:.4g}" for key, value in run.items()))
    return results, statistics.median(walls), statistics.median(loads)


def table(settings: Settings, results: dict[str, list[dict[str, float]]], wall: float,
          load: float, command: str) -> list[str]:
    med = {arm: {key: statistics.median(run[key] for run in results[arm])
                 for key, _, _ in MEASURES} for arm in ARMS}
    seeds = settings.seeds
    lines = [
        SECTION, "",
        f"Measured on {time.strftime('%Y-%m-%d')} with `{command}`. "
        f"The same ASHA study of `{BENCHMARK}` ({N_WORKERS} workers, {EPOCHS} epochs of "
        f"{settings.epoch_duration:g} s, `--random_seed {RANDOM_SEED}`, `{INSTANCE}`) runs "
        f"through `stbench run --backend sagemaker` on the local SageMaker endpoint, "
        f"{settings.budget:g} s per experiment, with `--warm_pool 1` and a warm-pool quota of "
        f"{N_WORKERS} (warm) and without warm pools (cold), {seeds} seed(s), the arms "
        f"alternating which goes first. Medians over seeds; each run took {wall:.0f} s "
        "(median) including the end of the experiment.", "",
        f"Scale 1:{settings.scale:g}: one second here stands for {settings.scale:g} s on "
        f"SageMaker. A cold start takes {settings.cold_start:g} s (standing for "
        f"{COLD_ON_SAGEMAKER / 60:g} minutes: in Syne Tune's SageMaker benchmarking guide the "
        "first resnet_cifar10 jobs on ml.g4dn.xlarge take \"about 7 to 8 minutes\" and later "
        "ones on warm pools \"only 2 to 3 minutes\"; the AWS warm-pool guide gives no figure, "
        "only \"typical startup times\"), a start on a warm pool "
        f"{settings.warm_start:g} s (standing for {WARM_ON_SAGEMAKER:g} s, an assumption), the "
        f"budget stands for {settings.budget * settings.scale / 60:g} minutes. Not scaled: the "
        "trainer container's start and Python imports (a second on an idle machine, several "
        f"under load: the 1-minute load average was {load:.1f} on {os.cpu_count()} cores, "
        "median over the runs) and the SageMaker adapter's 5 s poll interval, which both arms "
        "pay alike and which make the ratios below smaller than at SageMaker's own scale.", "",
        "| per experiment | warm pools | no warm pools | warm / cold |",
        "|---|---|---|---|",
    ]
    for key, label, form in MEASURES:
        warm, cold = med["warm"][key], med["cold"][key]
        ratio = f"{warm / cold:.2f}" if cold else "n/a"
        lines.append(f"| {label} | {form.format(warm)} | {form.format(cold)} | {ratio} |")
    more, dearer = (med["warm"][key] / med["cold"][key] if med["cold"][key] else math.nan
                    for key in ("finished", "cost_per_trial"))
    runs = [run for arm in ARMS for run in results[arm]]
    disagree = sum(run["agrees"] == 0.0 for run in runs)
    agreement = (f"the endpoint's own sums (and no job or pool left) agreed in all {len(runs)} "
                 "runs" if not disagree else f"the endpoint DISAGREED in {disagree} of "
                 f"{len(runs)} runs (or left jobs or pools): see the progress lines")
    lines += [
        "",
        f"With warm pools {more:.2f}x as many trials ended in the same budget, at {dearer:.2f}x "
        "the cost per trial ended. Trials ended within the budget: jobs that reached "
        "Completed, or Stopped by ASHA (it stops most trials at its first rungs), before the "
        "budget ran out, by the endpoint's clock from the first job's creation; the jobs the "
        "experiment's end stops do not count. Reports and best loss: result rows with a loss "
        "whose `wallclock_time` is within the budget; a trial may end in the budget and have "
        "its reports read only after it (the SageMaker adapter polls every 5 s), and then the "
        "study never sees them. Billable and retained seconds and cost: from "
        "the rows, whenever incurred (`BillableTimeInSeconds` plus warm-pool "
        f"`ResourceRetainedBillableTimeInSeconds` at the price of {INSTANCE} in "
        "stbench/model/prices.yaml, summed as `stbench results` does; the experiment's end "
        f"releases the pools); {agreement}. Stops "
        f"that took over {SLOW_STOP:g} s: jobs from the stop request to Stopped; a SIGTERM "
        "that reaches the trainer container before it has set its handler is lost, and the "
        "job runs to its end.", "",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=float, default=120.0, help="seconds per experiment")
    parser.add_argument("--scale", type=float, default=15.0,
                        help="SageMaker seconds one second here stands for")
    parser.add_argument("--quick", action="store_true", help="1 seed, 60 s: a smoke run")
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.budget = 1, 60.0
    settings = Settings(args.seeds, args.budget, args.scale)
    command = "python bench/warm_pools.py " + " ".join(sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="warm-pools-") as tmp:
        results, wall, load = measure(settings, Path(tmp))
    publish(table(settings, results, wall, load, command.strip()), args.write)


if __name__ == "__main__":
    main()
