"""Kill -9 and resume, and stop signals: what survives, what is left behind.

kill-*: the orchestrator is SIGKILLed at seeded random times, then resumed, for `stbench run`
(local processes), `stbench run --backend docker`, and a launched orchestrator job on the
local SageMaker endpoint, whose instance fails (`Emulator.fail_instance`) so that its
RetryStrategy restarts it from its checkpoint prefix. Each experiment is killed twice, then
finishes. Counted: resumes that completed, completed trials lost (completed in what survived
the kill, not completed at the end), repeated trial ids (one id for two configs, or a new id
not past every trial that had started), budget overrun (the experiment's wall-clock time over
all its runs minus an unkilled run's, same settings, in the same bench run), leftovers.
signal-*: SIGINT or SIGTERM (alternating) at seeded random times of `run --backend sagemaker`
(on the endpoint, with warm pools), `run --backend docker` and a launched orchestrator (SIGTERM
is StopTrainingJob, as SageMaker sends it; SIGINT goes to its container through Docker).
Leftovers are counted on the endpoint (ListTrainingJobs: jobs InProgress or Stopping,
WarmPoolStatus Available or InUse) and on the Docker engine (containers and volumes labelled
with the study's tag), and, locally, as processes still running in the run's folder.

    python bench/reliability_kills.py [--kills 20] [--only kill-local signal-docker ...] [--write]

Needs a Docker engine, both images (`make build`) and Debian's docker-registry.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(1, str(REPO / "tests"))

from docs_section import publish  # noqa: E402  (this folder)
from kill_points import job_trials_started, local_trials_started, processes_in, rows  # noqa: E402
from warm_pools import registry  # noqa: E402

from stbench.backends.jobs.docker_engine import STUDY_LABEL  # noqa: E402
from stbench.emulator import Emulator, EmulatorConfig  # noqa: E402
from stbench.emulator.account import ensure_bucket, ensure_execution_role  # noqa: E402
from stbench.orchestration.store import METADATA, experiment_dir  # noqa: E402

SECTION = "## Kill -9, resume and stop signals (bench/reliability_kills.py)"
DOC = REPO / "docs" / "reliability.md"
STBENCH = Path(sys.executable).parent / "stbench"
TRIAL_TYPE = "ml.c5.xlarge"
KILLS_PER_EXPERIMENT = 2
ORCHESTRATORS_PER_LAUNCH = 4  # plus one that is never killed: the overrun's anchor
BUDGET = {"local": 8.0, "docker": 12.0, "sagemaker": 10.0, "launch": 40.0}
ENDPOINT = dict(cold_start_seconds=0.5, warm_start_seconds=0.2, log_delay_seconds=1.0,
                checkpoint_sync_seconds=2.0, stop_grace_seconds=120.0)  # AWS's grace
SECTIONS = ("kill-local", "kill-docker", "kill-launch", "signal-sagemaker", "signal-docker",
            "signal-launch")


@dataclass
class Row:
    what: str
    backend: str
    kills: int = 0
    experiments: int = 0
    completed: int = 0  # resumes (kills) or runs (signals) that ended as they should
    lost: int = 0
    repeated: int = 0
    overruns: list[float] = field(default_factory=list)
    leftovers: int = 0


def say(message: str) -> None:
    print(f"reliability_kills: {message}", file=sys.stderr, flush=True)


def study_args(backend: str, tag: str, results: Path, *extra: str) -> list[str]:
    return ["--benchmark", "synthetic_curves", "--method", "RS", "--experiment_tag", tag,
            "--results_root", str(results), "--random_seed", "5", "--n_workers", "2",
            "--max_wallclock_time", f"{BUDGET[backend]:g}", "--epochs", "3",
            "--epoch_duration", "0.3", *extra]


def completed_ids(found: list[dict]) -> set[int]:
    final = {r["trial_id"]: r["status"] for r in found}
    return {t for t, status in final.items() if status == "Completed"}


def repeated_ids(found: list[dict], unreported: set[int]) -> int:
    """Ids with rows of two configs, plus ids of `unreported` with rows: trials that had
    started but had no row when their orchestrator was killed died with it, so rows under
    such an id come from a new trial that reused it."""
    configs: dict[int, set[str]] = {}
    for row in found:
        configs.setdefault(row["trial_id"], set()).add(json.dumps(row["config"], sort_keys=True))
    return sum(len(c) > 1 for c in configs.values()) + len(unreported & set(configs))


# --- kill -9 and resume: local processes and docker ------------------------------------------


def timed_run(command: list[str], cwd: Path, env: dict[str, str], kill_after: float | None,
              sig: int = signal.SIGKILL) -> tuple[float, int | None, bool]:
    """(wall seconds, exit code, whether the signal was sent before the process ended)."""
    began = time.monotonic()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, preexec_fn=_default_sigint)
    try:
        code = process.wait(timeout=kill_after)
        return time.monotonic() - began, code, False
    except subprocess.TimeoutExpired:
        os.kill(process.pid, sig)
        code = process.wait(timeout=600)
        return time.monotonic() - began, code, True


def _default_sigint() -> None:
    """A bench started in the background (`nohup … &`) ignores SIGINT, and its children would
    inherit that: Python then never turns SIGINT into KeyboardInterrupt. Ctrl-C's default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def docker_left(client: Any, tag: str) -> int:
    label = {"label": f"{STUDY_LABEL}={tag}"}
    return len(client.containers.list(all=True, filters=label)) + len(
        client.volumes.list(filters=label))


def kill_and_resume(backend: str, kills: int, rng: np.random.Generator, root: Path,
                    client: Any) -> Row:
    row = Row("kill -9, resume", backend)
    env = dict(os.environ)
    started = local_trials_started if backend == "local" else job_trials_started
    extra = ("--backend", "docker") if backend == "docker" else ()
    anchor_dir = root / f"anchor-{backend}"
    anchor_dir.mkdir()
    anchor, _, _ = timed_run([str(STBENCH), "run", *study_args(
        backend, f"anchor-{backend}", anchor_dir / "results", *extra)], anchor_dir, env, None)
    experiment = -1
    while row.kills < kills:  # a run may end before its kill: then one more experiment
        experiment += 1
        tag = f"kill-{backend}-{experiment}"
        where = root / tag
        where.mkdir()
        folder = experiment_dir(where / "results", tag, "synthetic_curves", "RS", 0)
        command = [str(STBENCH), "run", *study_args(backend, tag, where / "results", *extra),
                   "--resume"]
        wall, survived, unreported = 0.0, set(), set()
        for _ in range(KILLS_PER_EXPERIMENT):
            seconds, _, killed = timed_run(command, where, env,
                                           float(rng.uniform(0.5, BUDGET[backend])))
            wall += seconds
            row.kills += killed
            found = rows(folder)
            survived |= completed_ids(found)
            unreported |= started(folder) - {r["trial_id"] for r in found}
            time.sleep(2.0)  # the supervisor ends its trials once the orchestrator is gone
            row.leftovers += len(processes_in(where))
        seconds, code, _ = timed_run(command, where, env, None)
        wall += seconds
        found = rows(folder)
        meta = json.loads((folder / METADATA).read_text()) if (folder / METADATA).exists() else {}
        row.experiments += 1
        row.completed += code == 0 and meta.get("status") == "completed"
        row.lost += len(survived - completed_ids(found))
        row.repeated += repeated_ids(found, unreported)
        row.overruns.append(wall - anchor)
        row.leftovers += len(processes_in(where))
        if backend == "docker":
            row.leftovers += docker_left(client, tag)
        say(f"{tag}: exit {code}, {len(found)} rows, wall {wall:.1f} s (anchor {anchor:.1f})")
    return row


# --- the endpoint: registry, launch, counts ---------------------------------------------------


def push_images(address: str) -> dict[str, str]:
    done = subprocess.run([str(STBENCH), "images", "push", "--registry", address,
                           "--tag", "latest"], capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"push failed: {done.stderr.strip()[-500:]}")
    return {"trainer": f"{address}/stbench-trainer:latest"}


def endpoint_env(emulator: Emulator) -> dict[str, str]:
    env = {**os.environ, **emulator.environment(), "AWS_EC2_METADATA_DISABLED": "true"}
    env.pop("AWS_PROFILE", None)
    return env


def sagemaker_args(emulator: Emulator, image: str, bucket: str) -> list[str]:
    env = emulator.environment()
    return ["--image", image, "--role", ensure_execution_role(env),
            "--s3_root", f"{ensure_bucket(env, bucket)}/studies", "--warm_pool", "1"]


def summaries(emulator: Emulator, tag: str) -> dict[str, dict[str, Any]]:
    import boto3

    env = emulator.environment()
    sm = boto3.client("sagemaker", endpoint_url=env["AWS_ENDPOINT_URL"],
                      region_name=env["AWS_DEFAULT_REGION"],
                      aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    pages = sm.get_paginator("list_training_jobs").paginate(NameContains=tag,
                                                            PaginationConfig={"PageSize": 100})
    return {s["TrainingJobName"]: s for page in pages for s in page["TrainingJobSummaries"]}


def endpoint_left(jobs: dict[str, dict[str, Any]], skip: str = "-o") -> int:
    """Trial jobs still running or stopping, and warm pools still kept."""
    busy = sum(s["TrainingJobStatus"] in ("InProgress", "Stopping") for n, s in jobs.items()
               if skip not in n[-4:])
    pools = sum(s.get("WarmPoolStatus", {}).get("Status") in ("Available", "InUse")
                for s in jobs.values())
    return busy + pools


def launch(emulator: Emulator, images: dict[str, str], tag: str, seeds: int) -> list[str]:
    args = ["launch", "--benchmark", "synthetic_curves", "--method", "RS", "--experiment_tag",
            tag, "--num_seeds", str(seeds), "--n_workers", "2", "--max_wallclock_time",
            f"{BUDGET['launch']:g}", "--epochs", "3", "--epoch_duration", "0.3",
            "--random_seed", "5", "--no_quota_check",
            *sagemaker_args(emulator, images["trainer"], "kills")]
    done = subprocess.run([str(STBENCH), *args], capture_output=True, text=True,
                          env=endpoint_env(emulator), timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"launch failed: {done.stderr.strip()[-800:]}")
    return [f"{tag}-synthetic-curves-rs-{seed}-o00" for seed in range(seeds)]


def describe(emulator: Emulator, name: str) -> dict[str, Any]:
    assert emulator.service is not None
    return emulator.service.describe(emulator.config.region, {"TrainingJobName": name})


def wait_ended(emulator: Emulator, names: list[str], timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while any(describe(emulator, n)["TrainingJobStatus"] in ("InProgress", "Stopping")
              for n in names):
        if time.monotonic() > deadline:
            raise SystemExit(f"orchestrators still running after {timeout:g} s")
        time.sleep(1.0)


def first_training(emulator: Emulator, name: str, timeout: float = 300) -> float:
    """When the orchestrator job first trained (TrainingStartTime: its instance was up)."""
    deadline = time.monotonic() + timeout
    while (since := training_since(emulator, name)) is None:
        if time.monotonic() > deadline:
            raise SystemExit(f"{name} did not start training in {timeout:g} s")
        time.sleep(0.2)
    return since


def training_since(emulator: Emulator, name: str) -> float | None:
    """When the orchestrator's current container began training (None: not training)."""
    job = describe(emulator, name)
    last = job["SecondaryStatusTransitions"][-1]
    return last["StartTime"] if last["Status"] == "Training" else None


def durable_rows(emulator: Emulator, tag: str, seed: int, root: Path) -> list[dict]:
    """The orchestrator's results as its checkpoint prefix holds them now: what a restart
    restores."""
    s3 = emulator.service.s3(emulator.config.region)  # type: ignore[union-attr]
    prefix = f"studies/{tag}/synthetic_curves/RS/{seed}/orchestrator/"
    folder = root / f"{tag}-{seed}-{time.monotonic_ns()}"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="kills", Prefix=prefix):
        for item in page.get("Contents", []):
            if item["Key"].endswith((".jsonl", METADATA)):
                target = folder / Path(item["Key"]).name
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file("kills", item["Key"], str(target))
    return rows(folder)


def unlike_their_jobs(emulator: Emulator, base: str, found: list[dict],
                      jobs: dict[str, dict[str, Any]]) -> int:
    """Ids whose rows carry a config that is not the one their trial jobs were created with:
    a reused id. (The snapshot-before-kill test of local runs does not fit here: the
    endpoint kills the container moments after `fail_instance`, and a checkpoint sync in
    between may upload rows of that same trial.)"""
    configs: dict[int, set[str]] = {}
    for row in found:
        configs.setdefault(row["trial_id"], set()).add(
            json.dumps({k: str(v) for k, v in row["config"].items()}, sort_keys=True))
    reused = 0
    for trial_id, seen in configs.items():
        prefix = f"{base}-t{trial_id:06d}-"
        created = {json.dumps({k: v for k, v in describe(emulator, name)["HyperParameters"]
                               .items() if not k.startswith("stbench_")}, sort_keys=True)
                   for name in jobs if name.startswith(prefix)}
        reused += bool(seen - created) or len(created) > 1
    return reused


def kill_launched(kills: int, rng: np.random.Generator, emulator: Emulator,
                  images: dict[str, str], root: Path) -> Row:
    row = Row("kill -9, restart", "launch (endpoint)")
    per_round = ORCHESTRATORS_PER_LAUNCH * KILLS_PER_EXPERIMENT
    for round_ in range(math.ceil(kills / per_round)):
        tag = f"kill-launch-{round_}"
        names = launch(emulator, images, tag, ORCHESTRATORS_PER_LAUNCH + 1)
        began = {name: first_training(emulator, name) for name in names}
        plan = sorted((began[name] + float(rng.uniform(3, BUDGET["launch"] - 5)), name)
                      for name in names[1:] for _ in range(KILLS_PER_EXPERIMENT))
        survived: dict[str, set[int]] = {name: set() for name in names}
        for at, name in plan:
            while describe(emulator, name)["TrainingJobStatus"] == "InProgress":
                since = training_since(emulator, name)  # a restarted one: resumed first
                if since is not None and time.time() >= max(at, since + 3):
                    seed = int(name.split("-")[-2])
                    found = durable_rows(emulator, tag, seed, root)
                    survived[name] |= completed_ids(found)
                    emulator.fail_instance(name)
                    row.kills += 1
                    break
                time.sleep(0.2)
        wait_ended(emulator, names)
        jobs = summaries(emulator, tag)
        spans = {n: describe(emulator, n) for n in names}
        anchor = spans[names[0]]["TrainingEndTime"] - spans[names[0]]["TrainingStartTime"]
        for name in names[1:]:
            seed = int(name.split("-")[-2])
            found = durable_rows(emulator, tag, seed, root)
            job = spans[name]
            row.experiments += 1
            row.completed += job["TrainingJobStatus"] == "Completed"
            row.lost += len(survived[name] - completed_ids(found))
            row.repeated += repeated_ids(found, set()) + unlike_their_jobs(
                emulator, name.removesuffix("-o00"), found, jobs)
            row.overruns.append(job["TrainingEndTime"] - job["TrainingStartTime"] - anchor)
        row.leftovers += endpoint_left(jobs)
        say(f"{tag}: {row.kills} kills so far, statuses "
            f"{[spans[n]['TrainingJobStatus'] for n in names]}")
    return row


# --- stop signals -----------------------------------------------------------------------------


def signal_runs(backend: str, signals: int, rng: np.random.Generator, root: Path, client: Any,
                emulator: Emulator | None = None, images: dict[str, str] | None = None) -> Row:
    row = Row("SIGINT / SIGTERM", "sagemaker (endpoint)" if emulator else backend)
    env = endpoint_env(emulator) if emulator else dict(os.environ)
    attempt = 0
    while row.kills < signals:
        tag = f"signal-{backend}-{attempt}"
        sig = (signal.SIGINT, signal.SIGTERM)[row.kills % 2]
        where = root / tag
        where.mkdir()
        extra = (("--backend", "sagemaker", *sagemaker_args(emulator, images["trainer"], "sig"))
                 if emulator and images else ("--backend", "docker"))
        command = [str(STBENCH), "run", *study_args(backend, tag, where / "results", *extra)]
        _, code, sent = timed_run(command, where, env,
                                  float(rng.uniform(0.3, BUDGET[backend] + 4)), sig)
        attempt += 1
        if not sent:
            continue  # it ended before the signal: drawn again
        row.kills += 1
        row.experiments += 1
        row.completed += code in (0, 130)
        left = (endpoint_left(summaries(emulator, tag)) if emulator else
                docker_left(client, tag)) + len(processes_in(where))
        row.leftovers += left
        say(f"{tag}: {signal.Signals(sig).name}, exit {code}, {left} left")
    return row


def signal_launched(signals: int, rng: np.random.Generator, emulator: Emulator,
                    images: dict[str, str], client: Any) -> Row:
    row = Row("SIGINT / SIGTERM", "launch (endpoint)")
    round_ = 0
    while row.kills < signals:
        round_ += 1
        tag = f"signal-launch-{round_}"
        names = launch(emulator, images, tag, ORCHESTRATORS_PER_LAUNCH)
        began = {name: first_training(emulator, name) for name in names}
        plan = sorted((began[n] + float(rng.uniform(1, BUDGET["launch"] + 5)), n) for n in names)
        for at, name in plan:
            time.sleep(max(0.0, at - time.time()))
            if describe(emulator, name)["TrainingJobStatus"] != "InProgress":
                continue  # it ended before its signal
            if row.kills % 2:  # SIGTERM: what StopTrainingJob sends
                assert emulator.service is not None
                emulator.service.stop(emulator.config.region, {"TrainingJobName": name})
            else:
                client.containers.get(f"{emulator.id}-{emulator.config.region}-{name}").kill(
                    signal="SIGINT")
            row.kills += 1
        wait_ended(emulator, names)
        jobs = summaries(emulator, tag)
        row.experiments += len(names)
        row.completed += sum(jobs[n]["TrainingJobStatus"] in ("Stopped", "Failed", "Completed")
                             for n in names)
        row.leftovers += endpoint_left(jobs)
        say(f"{tag}: statuses {[jobs[n]['TrainingJobStatus'] for n in names]}, "
            f"{endpoint_left(jobs)} left")
    return row


# --- the table --------------------------------------------------------------------------------


def table(results: list[Row], seed: int, wall: float, load: str, command: str) -> list[str]:
    lines = [SECTION, "",
             f"Measured {time.strftime('%Y-%m-%d')} on a {os.cpu_count()}-core machine (load "
             f"average {load}) in {wall / 60:.0f} min, seed {seed}: `{command}`. Budgets: local "
             f"{BUDGET['local']:g} s, docker {BUDGET['docker']:g} s, sagemaker "
             f"{BUDGET['sagemaker']:g} s, launched orchestrators {BUDGET['launch']:g} s; 2 "
             "workers, synthetic_curves, RS.", "",
             "| kind | back-end | kills / signals | experiments | ended as they should | "
             "completed trials lost | repeated trial ids | budget overrun, median (max) | "
             "leftovers |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        kill = r.what.startswith("kill")
        overrun = (f"{statistics.median(r.overruns):+.1f} s ({max(r.overruns):+.1f} s)"
                   if r.overruns else "n/a")
        cells = [r.what, r.backend, r.kills, r.experiments, f"{r.completed} of {r.experiments}",
                 r.lost if kill else "n/a", r.repeated if kill else "n/a", overrun, r.leftovers]
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20, help="kills (signals) per back-end")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--only", nargs="*", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--write", action="store_true", help=f"update {DOC.name}")
    args = parser.parse_args()
    import docker

    client = docker.from_env()
    rngs = dict(zip(SECTIONS, (np.random.default_rng(s) for s in
                               np.random.SeedSequence(args.seed).spawn(len(SECTIONS))),
                    strict=True))
    began, load = time.monotonic(), f"{os.getloadavg()[0]:.1f}"
    results: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="stbench-kills-") as tmp:
        root = Path(tmp)
        for backend in ("local", "docker"):
            if f"kill-{backend}" in args.only:
                (root / f"kill-{backend}").mkdir()
                results.append(kill_and_resume(backend, args.kills, rngs[f"kill-{backend}"],
                                               root / f"kill-{backend}", client))
        if "signal-docker" in args.only:
            (root / "signal-docker").mkdir()
            results.append(signal_runs("docker", args.kills, rngs["signal-docker"],
                                       root / "signal-docker", client))
        if {"kill-launch", "signal-sagemaker", "signal-launch"} & set(args.only):
            quotas = {f"{TRIAL_TYPE} for training warm pool usage": 40.0,
                      f"{TRIAL_TYPE} for training job usage": 60.0,
                      "ml.m5.large for training job usage": 20.0}
            with registry(root) as address, Emulator(EmulatorConfig(quotas=quotas,
                                                                     **ENDPOINT)) as emulator:
                images = push_images(address)
                if "signal-sagemaker" in args.only:
                    (root / "signal-sagemaker").mkdir()
                    results.append(signal_runs("sagemaker", args.kills,
                                               rngs["signal-sagemaker"], root / "signal-sagemaker",
                                               client, emulator, images))
                if "kill-launch" in args.only:
                    results.append(kill_launched(args.kills, rngs["kill-launch"], emulator,
                                                 images, root))
                if "signal-launch" in args.only:
                    results.append(signal_launched(args.kills, rngs["signal-launch"], emulator,
                                                   images, client))
    command = "python bench/reliability_kills.py " + " ".join(sys.argv[1:])
    publish(table(results, args.seed, time.monotonic() - began, load, command.strip()),
            args.write, DOC)


if __name__ == "__main__":
    main()
