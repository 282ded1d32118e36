"""`stbench status`: one row per remotely launched experiment of a tag.

Reads one paginated `ListTrainingJobs` for every job of the tag, one `DescribeTrainingJob`
per orchestrator job (its hyperparameters name the experiment and its checkpoint prefix
holds the results), and that prefix's `metadata.json` and `results.jsonl` from S3.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import boto3

from stbench.backends.aws import denial_line, one_line, read_s3_text, retrying, split_s3_uri
from stbench.backends.jobs.sagemaker import LIST_PAGE_SIZE
from stbench.launch.study_jobs import study_matcher
from stbench.model.naming import JOB_NAME, name_key
from stbench.model.spec import ExperimentSpec
from stbench.orchestration.store import RESULTS, UPDATES, atomic_write, json_lines, merge_updates


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


@dataclass(frozen=True)
class LaunchedExperiment:
    spec: ExperimentSpec  # one method, one seed
    job: str  # its newest orchestrator job
    job_status: str
    checkpoint_uri: str  # where that job keeps its results
    running_trials: int
    failure: str | None = None  # its FailureReason, once it failed

    @property
    def folder(self) -> str:
        spec = self.spec
        return f"{spec.experiment_tag}/{spec.benchmark}/{spec.method[0]}/{spec.start_seed}"


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
    latest: dict[str, str] = {}  # experiment base -> its newest orchestrator job
    running: dict[str, int] = {}
    is_ours = study_matcher(tag, directory.describe)  # not a study whose tag starts the same
    for name, status in jobs.items():
        match = JOB_NAME.match(name)
        if not match or not is_ours(name):
            continue
        base = match["base"]
        if match["kind"].startswith("o"):
            latest[base] = max(latest.get(base, name), name)
        elif status in ("InProgress", "Stopping"):
            running[base] = running.get(base, 0) + 1
    found = []
    for base, name in sorted(latest.items()):
        job = directory.describe(name)
        spec = ExperimentSpec.from_hyperparameters(job["HyperParameters"])
        checkpoints = job["CheckpointConfig"]["S3Uri"]
        # `<tag>/<benchmark name>/<method>/<seed>/orchestrator/`: a user benchmark's spec
        # names its YAML's path, its results folder the name inside the YAML
        spec = replace(spec, benchmark=checkpoints.rstrip("/").split("/")[-4])
        found.append(LaunchedExperiment(spec, name, jobs[name], checkpoints,
                                        running.get(base, 0), job.get("FailureReason")))
    return found


def collect(session: boto3.session.Session, directory: JobDirectory,
            tag: str) -> list[ExperimentStatus]:
    s3 = session.client("s3", config=retrying())
    rows = []
    for exp in launched_experiments(directory, tag):
        metadata, results = _read_results(s3, exp.checkpoint_uri, exp.folder)
        rows.append(replace(_summarize(exp.spec, exp.job, exp.job_status, exp.running_trials,
                                       metadata, results), failure=exp.failure))
    return rows


def fetch_results(session: boto3.session.Session, directory: JobDirectory, tag: str,
                  root: Path) -> tuple[int, int]:
    """Copy every launched experiment's results from S3 into the local layout under root;
    returns how many had results to copy, and how many were launched."""
    s3 = session.client("s3", config=retrying())
    copied = 0
    launched = launched_experiments(directory, tag)
    for exp in launched:
        metadata, results = _read_results(s3, exp.checkpoint_uri, exp.folder)
        if not metadata:
            continue  # nothing uploaded yet
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
    done = [t for t in trials.values() if t.get("status") not in ("InProgress", None)]
    costs = [t["cost_usd"] for t in done if isinstance(t.get("cost_usd"), (int, float))]
    warm = sum(1 for t in done if t.get("started_on_warm_pool_of"))
    if job_status in ("InProgress", "Stopping"):  # a local ledger lists no trial jobs
        running = max(running, len(trials) - len(done))
    return ExperimentStatus(spec.benchmark, spec.method[0], spec.start_seed, job, job_status,
                            len(done), running, best, sum(costs) if costs else None, warm)


def format_status(rows: list[ExperimentStatus]) -> str:
    header = ("benchmark", "method", "seed", "job status", "trials", "running", "best",
              "cost $", "warm reuse")
    lines = [header]
    for r in rows:
        lines.append((r.benchmark, r.method, str(r.seed), r.job_status, str(r.trials_done),
                      str(r.running_trials), "-" if r.best is None else f"{r.best:.4g}",
                      "-" if r.cost_usd is None else f"{r.cost_usd:.3f}",
                      f"{r.warm_reused}/{r.trials_done}"))
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    table = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in lines]
    # a failed orchestrator job's reason, one line each; a denial names action and resource
    table += [f"{r.job}: {denial_line(r.failure) or one_line(r.failure)}"
              for r in rows if r.failure]
    return "\n".join(table)
