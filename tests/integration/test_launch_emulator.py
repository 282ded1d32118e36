"""`stbench launch` end to end on the local SageMaker endpoint, with the code that runs on AWS.

The images go to a real registry (`stbench images push --registry`), the study is launched
with `stbench launch`, each orchestrator job runs in a container whose trials are training
jobs it creates through boto3 on the endpoint (no Docker socket in it), and `stbench status`,
`stbench results` and the endpoint's own answers are compared. Everything is read back
through the public API (boto3, the CLI), never from the endpoint's internals.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from stbench.emulator import Emulator, EmulatorConfig
from stbench.emulator.account import ensure_bucket, ensure_execution_role
from stbench.model.naming import JOB_NAME, experiment_base
from stbench.model.prices import load_prices, trial_cost

pytestmark = [pytest.mark.docker, pytest.mark.slow]

STBENCH = Path(sys.executable).parent / "stbench"
TRIAL_TYPE = "ml.c5.xlarge"  # synthetic_curves' SageMaker instance type
STUDY = ["--benchmark", "synthetic_curves", "--n_workers", "1", "--max_wallclock_time", "30",
         "--epochs", "3", "--epoch_duration", "0.1", "--random_seed", "7"]
# Not about IAM (test_iam_endpoint.py is): the jobs' role may do anything.
FAST = dict(cold_start_seconds=1.0, warm_start_seconds=0.2, log_delay_seconds=2.0,
            checkpoint_sync_seconds=2.0, stop_grace_seconds=10.0, enforce_iam=False)


@pytest.fixture(scope="module")
def pushed(images: dict[str, str], registry: str) -> dict[str, str]:
    """Both role images in the registry, as `make push REGISTRY=...` leaves them."""
    result = subprocess.run([str(STBENCH), "images", "push", "--registry", registry,
                             "--tag", "latest"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return {"trainer": f"{registry}/stbench-trainer:latest",
            "orchestrator": f"{registry}/stbench-orchestrator:latest"}


def start_endpoint(**quotas: int) -> Emulator:
    return Emulator(EmulatorConfig(quotas=quotas, **FAST)).start()  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def warm_endpoint() -> Iterator[Emulator]:
    emulator = start_endpoint(**{f"{TRIAL_TYPE} for training warm pool usage": 4})
    yield emulator
    emulator.close()


def run(emulator: Emulator, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The stbench CLI with the endpoint's environment: what a user pastes after
    `stbench emulator` prints it."""
    env = {**os.environ, **emulator.environment(), "AWS_EC2_METADATA_DISABLED": "true"}
    env.pop("AWS_PROFILE", None)
    return subprocess.run([str(STBENCH), *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def sagemaker(emulator: Emulator) -> Any:
    env = emulator.environment()
    return boto3.client("sagemaker", endpoint_url=env["AWS_ENDPOINT_URL"],
                        region_name=env["AWS_DEFAULT_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def jobs_of(emulator: Emulator, tag: str) -> dict[str, dict[str, Any]]:
    """Every job of the tag, described by the endpoint."""
    client = sagemaker(emulator)
    names = [s["TrainingJobName"]
             for page in client.get_paginator("list_training_jobs").paginate(
                 NameContains=tag, PaginationConfig={"PageSize": 100})
             for s in page["TrainingJobSummaries"]]
    return {name: client.describe_training_job(TrainingJobName=name) for name in names}


def wait_for_orchestrators(emulator: Emulator, tag: str, count: int,
                           timeout: float = 420) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        jobs = jobs_of(emulator, tag)
        orchestrators = {n: d for n, d in jobs.items() if n.endswith("-o00")}
        if len(orchestrators) == count and all(
                d["TrainingJobStatus"] not in ("InProgress", "Stopping")
                for d in orchestrators.values()):
            return jobs
        assert time.monotonic() < deadline, {n: d["TrainingJobStatus"] for n, d in jobs.items()}
        time.sleep(3)


def launch_args(emulator: Emulator, pushed: dict[str, str], tag: str, bucket: str,
                *extra: str) -> list[str]:
    env = emulator.environment()
    return ["launch", *STUDY, "--image", pushed["trainer"], "--experiment_tag", tag,
            "--role", ensure_execution_role(env),
            "--s3_root", f"{ensure_bucket(env, bucket)}/studies", *extra]


def fetched_rows(root: Path) -> dict[str, dict[int, dict[str, Any]]]:
    """Each fetched experiment's last row per trial (it carries the trial's final
    annotations), by the experiment's job-name base."""
    found: dict[str, dict[int, dict[str, Any]]] = {}
    for path in root.rglob("results.jsonl"):
        tag, benchmark, method, seed = path.parent.parts[-4:]
        rows = found.setdefault(experiment_base(tag, benchmark, method, int(seed)), {})
        for line in path.read_text().splitlines():
            row = json.loads(line)
            rows[row["trial_id"]] = row
    return found


def assert_pools_agree(jobs: dict[str, dict[str, Any]], rows: dict[str, dict[int, dict[str, Any]]],
                       every_trial: bool = True) -> dict[str, int]:
    """Every trial's warm pool, reuse, billing and cost as the endpoint's DescribeTrainingJob
    of its jobs says; returns the trials started on a pool, by experiment. Pools belong to
    the account: a job of another experiment may take ours. Then ours records its pool as
    reused by that job, and that job's trial the pool it started on, though only our job
    names it. Without `every_trial`, trials without rows (cut by a restart before their
    first report) are left out."""
    trial_jobs = {n: d for n, d in jobs.items() if not n.endswith("-o00")}
    origin = {d["WarmPoolStatus"]["ReusedByJob"]: name for name, d in trial_jobs.items()
              if d.get("WarmPoolStatus", {}).get("ReusedByJob")}
    by_trial: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for name in sorted(trial_jobs):
        match = JOB_NAME.match(name)
        assert match, name
        by_trial[match["base"]][int(match["kind"][1:7])].append(name)
    assert sorted(rows) == sorted(by_trial)
    prices, warm = load_prices(), {}
    for base, trials in by_trial.items():
        assert set(rows[base]) <= set(trials) and (set(rows[base]) == set(trials)
                                                   or not every_trial), base
        warm[base] = 0
        for trial_id, names in trials.items():
            if trial_id not in rows[base]:
                continue
            described = [trial_jobs[name] for name in names]
            pool = described[-1].get("WarmPoolStatus", {})
            billable = sum(d["BillableTimeInSeconds"] for d in described)
            retained = sum(d.get("WarmPoolStatus", {}).get(
                "ResourceRetainedBillableTimeInSeconds", 0) for d in described)
            source = origin.get(names[-1])
            expected = {
                "job_name": names[-1], "warm_pool_status": pool.get("Status"),
                "warm_pool_reused_by": pool.get("ReusedByJob"), "started_on_warm_pool_of": source,
                "warm_pool_retained_seconds": retained, "billable_seconds": billable,
                "cost_usd": trial_cost(prices, TRIAL_TYPE, 1, billable, retained),
            }
            row = rows[base][trial_id]
            assert {key: row.get(key) for key in expected} == expected, (base, trial_id)
            warm[base] += source is not None
    return warm


def status_rows(emulator: Emulator, tag: str) -> dict[str, list[str]]:
    """`stbench status`'s rows by experiment base."""
    status = run(emulator, "status", "--experiment_tag", tag)
    assert status.returncode == 0, status.stderr
    rows = [line.split() for line in status.stdout.splitlines()[1:]]
    return {experiment_base(tag, row[0], row[1], int(row[2])): row for row in rows}


def test_a_launched_study_trains_through_the_endpoint_and_reuses_warm_pools(
        warm_endpoint: Emulator, pushed: dict[str, str], docker_client: Any,
        tmp_path: Path) -> None:
    tag = "e2e"
    launched = run(warm_endpoint, *launch_args(warm_endpoint, pushed, tag, "e2e-bucket",
                                               "--method", "RS", "ASHA", "--num_seeds", "2",
                                               "--warm_pool", "1"))
    assert launched.returncode == 0, launched.stderr[-2000:]
    assert "4 orchestrator jobs launched" in launched.stderr
    jobs = wait_for_orchestrators(warm_endpoint, tag, 4)

    orchestrators = {n: d for n, d in jobs.items() if n.endswith("-o00")}
    assert {d["TrainingJobStatus"] for d in orchestrators.values()} == {"Completed"}, {
        n: d.get("FailureReason") for n, d in orchestrators.items()}
    # The orchestrators run with trials on SageMaker (the endpoint): their containers have no
    # Docker socket, so every trial job below was created by them through boto3.
    for description in orchestrators.values():
        assert json.loads(description["HyperParameters"]["backend"]) == "sagemaker"
    trials = {n: d for n, d in jobs.items() if not n.endswith("-o00")}
    by_experiment: dict[str, list[str]] = defaultdict(list)
    for name in trials:
        match = JOB_NAME.match(name)
        assert match, name
        by_experiment[match["base"]].append(name)
    assert sorted(by_experiment) == sorted(n.removesuffix("-o00") for n in orchestrators)
    assert all(len(names) >= 2 for names in by_experiment.values()), by_experiment

    pools = [d.get("WarmPoolStatus", {}).get("Status") for d in trials.values()]
    assert pools.count("Reused") > 0, pools
    assert not {"Available", "InUse"} & set(pools), pools  # every pool was released
    assert all(d["BillableTimeInSeconds"] > 0 for d in trials.values())

    status = status_rows(warm_endpoint, tag)
    assert len(status) == 4 and {row[3] for row in status.values()} == {"Completed"}, status
    prices = load_prices()
    for base, row in status.items():
        trial_ids = {re.search(r"-t(\d{6})-", n)[1] for n in by_experiment[base]}
        assert int(row[4]) == len(trial_ids), (base, row)
        # the orchestrator job's own cost, as the endpoint billed it
        described = orchestrators[f"{base}-o00"]
        billed = trial_cost(prices, described["ResourceConfig"]["InstanceType"], 1,
                            described["BillableTimeInSeconds"])
        assert billed and row[8] == f"{billed:.3f}", (base, row)

    report = run(warm_endpoint, "results", "--experiment_tag", tag,
                 "--results_root", str(tmp_path / "results"))
    assert report.returncode == 0, report.stderr[-2000:]
    assert "fetched 4 experiments" in report.stderr
    assert (tmp_path / "results" / tag / "plots" / "synthetic_curves.png").exists()
    finals: dict[tuple[str, int], dict[str, Any]] = {}
    for path in (tmp_path / "results" / tag).rglob("results.jsonl"):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            finals[(str(path.parent), row["trial_id"])] = row
    assert len(finals) == sum(len(set(re.findall(r"-t(\d{6})-", " ".join(names))))
                              for names in by_experiment.values())
    for path in (tmp_path / "results" / tag).rglob("metadata.json"):
        assert json.loads(path.read_text())["orchestrator_cost_usd"] > 0, path
    for row in finals.values():  # stopped and paused trials too
        assert row.get("billable_seconds") and row.get("cost_usd"), row
    # the 4 experiments' pools are one account's: each trial's as the endpoint says
    warm = assert_pools_agree(jobs, fetched_rows(tmp_path / "results" / tag))
    assert sum(warm.values()) == pools.count("Reused"), (warm, pools)
    assert {base: row[-1] for base, row in status.items()} == {
        base: f"{warm[base]}/{row[4]}" for base, row in status.items()}

    left = docker_client.containers.list(  # type: ignore[attr-defined]
        all=True, filters={"label": f"stbench.emulator={warm_endpoint.id}"})
    assert left == []


def test_with_the_default_warm_pool_quota_no_pool_is_kept(
        pushed: dict[str, str], docker_client: Any) -> None:
    endpoint = start_endpoint()  # AWS's default: a warm-pool quota of 0 for every type
    try:
        refused = run(endpoint, *launch_args(endpoint, pushed, "cold", "cold-bucket",
                                             "--method", "ASHA", "--warm_pool"))
        assert refused.returncode == 2
        assert refused.stderr.count("\n") == 1, refused.stderr
        assert f"'{TRIAL_TYPE} for training warm pool usage' is 0" in refused.stderr
        assert jobs_of(endpoint, "cold") == {}  # the check runs before any job

        launched = run(endpoint, *launch_args(endpoint, pushed, "cold", "cold-bucket",
                                              "--method", "ASHA", "--warm_pool",
                                              "--no_quota_check"))
        assert launched.returncode == 0, launched.stderr[-2000:]
        jobs = wait_for_orchestrators(endpoint, "cold", 1)
        trials = {n: d for n, d in jobs.items() if not n.endswith("-o00")}
        assert len(trials) >= 2
        assert all(d["ResourceConfig"].get("KeepAlivePeriodInSeconds") for d in trials.values())
        assert [d.get("WarmPoolStatus") for d in trials.values() if d.get("WarmPoolStatus")] == []
    finally:
        endpoint.close()


def test_a_launched_orchestrator_whose_instance_fails_restarts_and_resumes(
        pushed: dict[str, str], docker_client: Any, tmp_path: Path) -> None:
    """Issue 14 R2: the orchestrator job's instance fails mid-study (Emulator.fail_instance,
    an InternalServerError); its RetryStrategy restarts it, it resumes from its checkpoint
    prefix, stops the trial job it left running and names no job or trial id again. The
    earlier trials' pools, reused or released after the restart, are recorded as they
    ended, not as the first run last saw them."""
    endpoint = start_endpoint(**{f"{TRIAL_TYPE} for training warm pool usage": 2})
    tag = "restart"
    try:
        launched = run(endpoint, *launch_args(endpoint, pushed, tag, "restart-bucket",
                                              "--method", "RS", "--warm_pool", "1"))
        assert launched.returncode == 0, launched.stderr[-2000:]
        orchestrator = f"{tag}-synthetic-curves-rs-0-o00"
        deadline = time.monotonic() + 240
        while True:  # a trial running, and earlier ones in the uploaded results
            trials = {n: d for n, d in jobs_of(endpoint, tag).items() if n != orchestrator}
            if len(trials) >= 3 and any(d["TrainingJobStatus"] == "InProgress"
                                        for d in trials.values()):
                break
            assert time.monotonic() < deadline, trials.keys()
            time.sleep(0.5)
        endpoint.fail_instance(orchestrator)
        jobs = wait_for_orchestrators(endpoint, tag, 1)
        final = jobs[orchestrator]
        assert final["TrainingJobStatus"] == "Completed", final.get("FailureReason")
        steps = [t["Status"] for t in final["SecondaryStatusTransitions"]]
        assert steps.index("Starting", steps.index("Training")) > 0, steps  # restarted
        trials = {n: d for n, d in jobs.items() if n != orchestrator}
        assert all(d["TrainingJobStatus"] in ("Completed", "Stopped", "Failed")
                   for d in trials.values())
        fetched = run(endpoint, "results", "--experiment_tag", tag,
                      "--results_root", str(tmp_path / "results"))
        assert fetched.returncode == 0, fetched.stderr[-2000:]
        folder = next((tmp_path / "results" / tag).rglob("metadata.json")).parent
        meta = json.loads((folder / "metadata.json").read_text())
        assert meta["status"] == "completed" and meta["resumed"] is True
        configs: dict[int, set[str]] = defaultdict(set)
        for line in (folder / "results.jsonl").read_text().splitlines():
            row = json.loads(line)
            configs[row["trial_id"]].add(json.dumps(row["config"], sort_keys=True))
        assert all(len(c) == 1 for c in configs.values()), configs  # no id for two trials
        job_ids = {int(re.search(r"-t(\d{6})-", n)[1]) for n in trials}
        assert set(configs) <= job_ids
        # one experiment alone on the account: its pools, as the endpoint says, and status
        warm = assert_pools_agree(jobs, fetched_rows(tmp_path / "results" / tag),
                                  every_trial=False)
        [(base, row)] = status_rows(endpoint, tag).items()
        assert row[-1] == f"{warm[base]}/{row[4]}" and warm[base] > 0, row
        left = docker_client.containers.list(  # type: ignore[attr-defined]
            all=True, filters={"label": f"stbench.emulator={endpoint.id}"})
        assert left == []
    finally:
        endpoint.close()
