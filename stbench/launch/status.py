"""`stbench status`: one row per remotely launched experiment of a tag.

Reads one paginated `ListTrainingJobs` for every job of the tag, one `DescribeTrainingJob`
per orchestrator job (its hyperparameters name the experiment, its checkpoint prefix holds
the results, its billing prices it), and that prefix's `metadata.json` and `results.jsonl`
from S3.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import boto3
from syne_tune.backend.trial_status import Status

from stbench.backends.aws import denial_line, one_line, read_s3_text, retrying, split_s3_uri
from stbench.backends.jobs.sagemaker import LIST_PAGE_SIZE
from stbench.launch.study_jobs import study_matcher
from stbench.model.atomic_files import atomic_write
from stbench.model.job_statuses import BUSY_JOB_STATUSES
from stbench.model.naming import JOB_NAME, name_key
from stbench.model.prices import load_prices, trial_cost
from stbench.model.spec import ExperimentSpec
from stbench.orchestration.store import RESULTS, UPDATES, json_lines, merge_updates

RUNNING = BUSY_JOB_STATUSES  # SageMaker bills these jobs, but only once they end
# written into a fetched experiment's metadata.json, read by `stbench results`
ORCHESTRATOR_COST = "orchestrator_cost_usd"  # USD, null when its instance type has no price
ORCHESTRATOR_RUNNING = "orchestrator_running"  # true: the cost so far of a job still running


@dataclass(frozen=True)
class OrchestratorCost:
    """What an experiment's orchestrator jobs cost, apart from its trials' jobs.

    ``usd`` is None when a job's instance type has no price (``unpriced`` names it), so an
    unknown cost never reads as $0; while a job runs it is the cost so far (elapsed x price).
    """

    usd: float | None
    running: bool = False
    unpriced: str | None = None

    def cell(self) -> str:
        if self.usd is None:
            return "?"
        return f"{self.usd:.3f}" + (" so far" if self.running else "")

    def metadata(self) -> dict[str, Any]:
        return {ORCHESTRATOR_COST: self.usd, ORCHESTRATOR_RUNNING: self.running}


def orchestrator_cost(jobs: Sequence[dict[str, Any]], prices: dict[str, float],
                      now: datetime | None = None) -> OrchestratorCost:
    """Price an experiment's orchestrator jobs (DescribeTrainingJob answers; a restarted or
    resumed experiment has several): an ended job's ``BillableTimeInSeconds`` x instances x
    price, a running one's seconds since its ``TrainingStartTime`` (none before it)."""
    now = now or datetime.now(UTC)
    total, running, unpriced = 0.0, False, None
    for job in jobs:
        resources = job.get("ResourceConfig") or {}
        instance_type = str(resources.get("InstanceType", ""))
        start, end = job.get("TrainingStartTime"), job.get("TrainingEndTime")
        if job.get("TrainingJobStatus") in RUNNING:
            running = True
            seconds = max(0.0, (now - start).total_seconds()) if start else 0.0
        elif job.get("BillableTimeInSeconds") is not None:
            seconds = float(job["BillableTimeInSeconds"])
        else:  # billed from start to end; a job that ended before it started cost nothing
            seconds = max(0.0, (end - start).total_seconds()) if start and end else 0.0
        retained = (job.get("WarmPoolStatus") or {}).get("ResourceRetainedBillableTimeInSeconds")
        cost = trial_cost(prices, instance_type, max(1, int(resources.get("InstanceCount", 1))),
                          seconds, retained)
        if cost is None:
            unpriced = instance_type or "an instance type not named"
        else:
            total += cost
    return OrchestratorCost(None if unpriced else total, running, unpriced)


@dataclass(frozen=True)
class ExperimentStatus:
    benchmark: str
    method: str
    seed: int
    job: str
    job_status: str
    trials_done: int
    running_trials: int
    best: float | None
    cost_usd: float | None
    warm_reused: int
    failure: str | None = None  # the orchestrator job's FailureReason
    orchestrator: OrchestratorCost = OrchestratorCost(None)


@dataclass(frozen=True)
class LaunchedExperiment:
    spec: ExperimentSpec  # one method, one seed
    job: str  # its newest orchestrator job
    job_status: str
    checkpoint_uri: str  # where that job keeps its results
    running_trials: int
    failure: str | None = None  # its FailureReason, once it failed
    # DescribeTrainingJob of each of its orchestrator jobs, oldest first (a resume adds one)
    orchestrators: tuple[dict[str, Any], ...] = field(default=(), repr=False)

    @property
    def folder(self) -> str:
        spec = self.spec
        return (f"{spec.experiment_tag}/{spec.benchmark}/{spec.variants()[0].label}/"
                f"{spec.start_seed}")


class JobDirectory(Protocol):
    """Where a tag's jobs are listed: SageMaker, or the S3 ledger of a `launch --local`."""

    def job_statuses(self) -> dict[str, str]: ...

    def describe(self, name: str) -> dict[str, Any]: ...


class SageMakerJobs:
    def __init__(self, session: boto3.session.Session, tag: str):
        self.sm = session.client("sagemaker", config=retrying())
        self.tag = tag

    def job_statuses(self) -> dict[str, str]:
        jobs: dict[str, str] = {}
        paginator = self.sm.get_paginator("list_training_jobs")
        pages = paginator.paginate(NameContains=name_key(self.tag),
                                   PaginationConfig={"PageSize": LIST_PAGE_SIZE})
        for page in pages:  # pages may be empty and still carry a NextToken
            for summary in page["TrainingJobSummaries"]:
                jobs[summary["TrainingJobName"]] = summary["TrainingJobStatus"]
        return jobs

    def describe(self, name: str) -> dict[str, Any]:
        return self.sm.describe_training_job(TrainingJobName=name)


def job_directory(session: boto3.session.Session, tag: str) -> JobDirectory:
    return SageMakerJobs(session, tag)


def launched_experiments(directory: JobDirectory, tag: str) -> list[LaunchedExperiment]:
    """Every experiment of the tag: one listing, one describe per orchestrator job."""
    jobs = directory.job_statuses()
    orchestrators: dict[str, list[str]] = {}  # experiment base -> its orchestrator jobs
    running: dict[str, int] = {}
    describe = cache(directory.describe)  # the matcher may have described one already
    is_ours = study_matcher(tag, describe)  # not a study whose tag starts the same
    for name, status in jobs.items():
        match = JOB_NAME.match(name)
        if not match or not is_ours(name):
            continue
        base = match["base"]
        if match["kind"].startswith("o"):
            orchestrators.setdefault(base, []).append(name)
        elif status in RUNNING:
            running[base] = running.get(base, 0) + 1
    found = []
    for base, names in sorted(orchestrators.items()):
        names.sort()
        name = names[-1]  # the newest
        job = describe(name)
        spec = ExperimentSpec.from_hyperparameters(job["HyperParameters"])
        checkpoints = job["CheckpointConfig"]["S3Uri"]
        # `<tag>/<benchmark name>/<method>/<seed>/orchestrator/`: a user benchmark's spec
        # names its YAML's path, its results folder the name inside the YAML
        spec = replace(spec, benchmark=checkpoints.rstrip("/").split("/")[-4])
        found.append(LaunchedExperiment(spec, name, jobs[name], checkpoints,
                                        running.get(base, 0), job.get("FailureReason"),
                                        tuple(describe(n) for n in names)))
    return found


def collect(session: boto3.session.Session, directory: JobDirectory,
            tag: str) -> list[ExperimentStatus]:
    s3 = session.client("s3", config=retrying())
    prices = load_prices()
    rows = []
    for exp in launched_experiments(directory, tag):
        metadata, results = _read_results(s3, exp.checkpoint_uri, exp.folder)
        rows.append(replace(_summarize(exp.spec, exp.job, exp.job_status, exp.running_trials,
                                       metadata, results), failure=exp.failure,
                            orchestrator=orchestrator_cost(exp.orchestrators, prices)))
    return rows


def fetch_results(session: boto3.session.Session, directory: JobDirectory, tag: str,
                  root: Path) -> tuple[int, int]:
    """Copy every launched experiment's results from S3 into the local layout under root;
    returns how many had results to copy, and how many were launched."""
    s3 = session.client("s3", config=retrying())
    prices = load_prices()
    copied = 0
    launched = launched_experiments(directory, tag)
    for exp in launched:
        metadata, results = _read_results(s3, exp.checkpoint_uri, exp.folder)
        if not metadata:
            continue  # nothing uploaded yet
        # the orchestrator jobs' own cost is SageMaker's, not in the uploaded files
        metadata.update(orchestrator_cost(exp.orchestrators, prices).metadata())
        folder = root / exp.folder
        atomic_write(folder / "metadata.json", json.dumps(metadata, indent=2) + "\n")
        atomic_write(folder / "results.jsonl", "".join(json.dumps(r) + "\n" for r in results))
        copied += 1
    return copied, len(launched)


def _read_results(s3: Any, prefix: str, folder: str) -> tuple[dict[str, Any], list[dict]]:
    bucket, key = split_s3_uri(prefix)
    found = [read_s3_text(s3, bucket, f"{key}{folder}/{name}") or ""
             for name in ("metadata.json", RESULTS, UPDATES)]
    metadata = json.loads(found[0]) if found[0] else {}
    # a running experiment's trial statuses are in its updates file; an upload may catch a
    # last line mid-write
    return metadata, merge_updates(json_lines(found[1]), json_lines(found[2]))


def _summarize(spec: ExperimentSpec, job: str, job_status: str, running: int,
               metadata: dict[str, Any], rows: list[dict]) -> ExperimentStatus:
    metric, mode = metadata.get("metric"), metadata.get("mode", "min")
    values = [r["metrics"][metric] for r in rows if metric in r.get("metrics", {})]
    best = (min(values) if mode == "min" else max(values)) if values else None
    trials: dict[int, dict] = {}
    for row in rows:
        trials[row["trial_id"]] = row  # the last row holds the trial's final annotations
    done = [t for t in trials.values() if t.get("status") not in (Status.in_progress, None)]
    costs = [t["cost_usd"] for t in done if isinstance(t.get("cost_usd"), (int, float))]
    warm = sum(1 for t in done if t.get("started_on_warm_pool_of"))
    if job_status in RUNNING:  # a local ledger lists no trial jobs
        running = max(running, len(trials) - len(done))
    return ExperimentStatus(spec.benchmark, spec.variants()[0].label, spec.start_seed, job,
                            job_status,
                            len(done), running, best, sum(costs) if costs else None, warm)


def format_status(rows: list[ExperimentStatus]) -> str:
    """The table, then a line per unpriced instance type and per failed orchestrator job."""
    header = ("benchmark", "method", "seed", "job status", "trials", "running", "best",
              "trials $", "orchestrator $", "warm reuse")
    lines = [header]
    for r in rows:
        lines.append((r.benchmark, r.method, str(r.seed), r.job_status, str(r.trials_done),
                      str(r.running_trials), "-" if r.best is None else f"{r.best:.4g}",
                      "-" if r.cost_usd is None else f"{r.cost_usd:.3f}",
                      r.orchestrator.cell(), f"{r.warm_reused}/{r.trials_done}"))
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    table = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in lines]
    unpriced = sorted({r.orchestrator.unpriced for r in rows if r.orchestrator.unpriced})
    table += [f"?: {name} has no price in the price table; add it there (STBENCH_PRICES)"
              for name in unpriced]
    # a failed orchestrator job's reason, one line each; a denial names action and resource
    table += [f"{r.job}: {denial_line(r.failure) or one_line(r.failure)}"
              for r in rows if r.failure]
    return "\n".join(table)
