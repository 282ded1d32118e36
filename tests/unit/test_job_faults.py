"""Whole experiments through the job backend against a simulated job service with faults.

The simulator behaves like SageMaker where it matters to the decisions: jobs take time,
stopping takes time and holds the instance, warm pools wait after a job and are reused by a
matching job, and 35 % of calls are throttled and 35 % of creates hit ResourceLimitExceeded.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stbench.backends.jobs.backend import JobBackend
from stbench.backends.jobs.job_requests import JobTemplate
from stbench.backends.jobs.job_service import (
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    STOPPED,
    STOPPING,
    CapacityError,
    Throttled,
)
from stbench.benchmarks.synthetic_curves import loss_at
from stbench.model.benchmark import load_benchmark
from stbench.model.methods import MethodContext, get_method
from stbench.orchestration.experiment import Budget, ExperimentLoop
from stbench.orchestration.progress import SilentProgress
from stbench.orchestration.store import ResultStore

EPOCH_SECONDS = 0.01
STOP_SECONDS = 0.03


@dataclass
class SimJob:
    request: dict[str, Any]
    started: float
    epochs: int
    status: str = IN_PROGRESS
    ended: float | None = None
    stop_requested: float | None = None
    reports_sent: int = 0
    pool: dict[str, Any] | None = None
    fail: bool = False


@dataclass
class SimulatedJobService:
    metrics_delay_seconds: float = 0.0
    fault_rate: float = 0.35
    fail_jobs: bool = False
    seed: int = 0
    jobs: dict[str, SimJob] = field(default_factory=dict)
    available_pools: list[str] = field(default_factory=list)
    calls: int = 0
    faults: int = 0
    peak_instances: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def _maybe_fault(self, create: bool = False) -> None:
        self.calls += 1
        if self.rng.random() < self.fault_rate:
            self.faults += 1
            raise Throttled("ThrottlingException: Rate exceeded")
        if create and self.rng.random() < self.fault_rate:
            self.faults += 1
            raise CapacityError("ResourceLimitExceeded: ml.c5.large for training job usage")

    def _advance(self) -> None:
        now = time.monotonic()
        for name, job in self.jobs.items():
            if job.status == IN_PROGRESS and now >= job.started + job.epochs * EPOCH_SECONDS:
                self._end(name, job, FAILED if job.fail else COMPLETED, now)
            elif job.status == STOPPING and now >= (job.stop_requested or now) + STOP_SECONDS:
                self._end(name, job, STOPPED, now)

    def _end(self, name: str, job: SimJob, status: str, now: float) -> None:
        job.status, job.ended = status, now
        if job.request["ResourceConfig"].get("KeepAlivePeriodInSeconds"):
            job.pool = {"Status": "Available", "ResourceRetainedBillableTimeInSeconds": 0}
            self.available_pools.append(name)

    def instances(self) -> int:
        busy = sum(1 for j in self.jobs.values() if j.status in (IN_PROGRESS, STOPPING))
        return busy + len(self.available_pools)

    def create_training_job(self, request: dict[str, Any]) -> None:
        self._maybe_fault(create=True)
        name = request["TrainingJobName"]
        assert name not in self.jobs, "job names are unique"
        self._advance()
        if self.available_pools:
            reused = self.available_pools.pop(0)
            self.jobs[reused].pool = {"Status": "Reused", "ReusedByJob": name,
                                      "ResourceRetainedBillableTimeInSeconds": 1}
        epochs = int(request["HyperParameters"]["epochs"])
        self.jobs[name] = SimJob(request, time.monotonic(), epochs, fail=self.fail_jobs)
        self.peak_instances = max(self.peak_instances, self.instances())

    def describe_training_jobs(self, names: list[str]) -> dict[str, dict[str, Any]]:
        self._maybe_fault()
        self._advance()
        out = {}
        for name in names:
            job = self.jobs[name]
            out[name] = {"TrainingJobStatus": job.status}
            if job.ended is not None:  # as on SageMaker: billed time shows once a job ended
                out[name]["BillableTimeInSeconds"] = 1
            if job.pool:
                out[name]["WarmPoolStatus"] = dict(job.pool)
            if job.status == FAILED:
                out[name]["FailureReason"] = "exit code 1: simulated"
        return out

    def read_metrics(self, names: list[str]) -> dict[str, list[dict[str, Any]]]:
        self._maybe_fault()
        now = time.monotonic()
        out = {}
        for name in names:
            job = self.jobs[name]
            until = job.ended or now
            done = min(job.epochs, int((until - job.started) / EPOCH_SECONDS))
            hps = job.request["HyperParameters"]
            new = [{"epoch": e, "loss": loss_at(e, float(hps["x"]), float(hps["log_lr"]),
                                                int(hps["width"])),
                    "st_worker_timestamp": time.time()}
                   for e in range(job.reports_sent + 1, done + 1)]
            job.reports_sent = done
            if new:
                out[name] = new
        return out

    def stop_training_job(self, name: str) -> None:
        self._maybe_fault()
        job = self.jobs[name]
        if job.status == IN_PROGRESS:
            job.status, job.stop_requested = STOPPING, time.monotonic()

    def release_warm_pool(self, name: str) -> None:
        self._maybe_fault()
        if name in self.available_pools:
            self.available_pools.remove(name)
            self.jobs[name].pool = {"Status": "Terminated",
                                    "ResourceRetainedBillableTimeInSeconds": 2}

    def warm_pool_status(self, names: list[str]) -> dict[str, dict[str, Any] | None]:
        self._maybe_fault()
        return {n: dict(self.jobs[n].pool) if self.jobs[n].pool else None for n in names}

    def metrics_complete(self, name: str) -> bool:
        return True  # an ended job's reports are all handed out by the next read

    def wait_for_activity(self, timeout: float) -> None:
        time.sleep(min(timeout, 0.005))

    def close(self) -> None:
        pass


def run_experiment(service: SimulatedJobService, tmp_path: Path, method: str = "ASHA",
                   max_failures: int = 3) -> tuple[Any, ResultStore]:
    bench = load_benchmark("synthetic_curves").with_fixed_values({"epochs": "9"})
    scheduler = get_method(method).make_scheduler(MethodContext.for_benchmark(bench, 7))
    template = JobTemplate(image="trainer", benchmark=bench.name, instance_type="ml.c5.large",
                           checkpoint_root="s3://b/ckpt/", output_root="s3://b/out/",
                           keep_alive_seconds=300)
    backend = JobBackend(service, template, "sim", capacity_wait_seconds=0.001,
                         throttle_base_seconds=0.001, prices={"ml.c5.large": 0.36})
    store = ResultStore(tmp_path / "exp", {"status": "new"})
    loop = ExperimentLoop(scheduler, backend, store, Budget(60, 4, max_failures, 30),
                          bench.metric, bench.mode, SilentProgress())
    return loop.run(), store


def test_faulty_service_never_costs_a_trial_and_keeps_the_worker_limit(tmp_path: Path) -> None:
    service = SimulatedJobService()
    outcome, store = run_experiment(service, tmp_path)
    assert service.faults / service.calls >= 0.3, "faults were injected on >= 30 % of calls"
    assert outcome.status == "completed" and outcome.failures == 0
    assert outcome.trials == 30
    statuses = {row["trial_id"]: row["status"] for row in store.rows}
    assert len(statuses) == 30 and set(statuses.values()) <= {"Completed", "Stopped"}
    assert "Stopped" in statuses.values(), "ASHA stopped some trials early"
    assert service.peak_instances <= 4, "running, stopping and waiting instances <= n_workers"
    reused = [j for j in service.jobs.values() if j.pool and j.pool["Status"] == "Reused"]
    assert len(reused) >= 20, "trials after the first n_workers land on warm pools"
    assert not service.available_pools, "the experiment's end releases every warm pool"
    assert all(j.status in (COMPLETED, STOPPED) for j in service.jobs.values())
    # Every trial is billed once its job ended, those ASHA stopped too, and the time its
    # pool was kept is counted once that pool was reused or released.
    assert all(row["billable_seconds"] == 1 for row in store.rows)
    assert all(row["warm_pool_retained_seconds"] in (1, 2) for row in store.rows)
    assert all(row["cost_usd"] == pytest.approx(0.36 * (1 + row["warm_pool_retained_seconds"])
                                                / 3600) for row in store.rows)


def test_failing_jobs_end_the_experiment_at_max_failures(tmp_path: Path) -> None:
    service = SimulatedJobService(fail_jobs=True, seed=1)
    outcome, store = run_experiment(service, tmp_path, method="RS", max_failures=3)
    # trials failing in the same poll all count; no new trial starts once the limit is hit
    assert outcome.status == "failed" and 3 <= outcome.failures <= 3 + 4
    assert outcome.trials <= outcome.failures + 4
    failed = [row for row in store.rows if row["status"] == "Failed"]
    assert failed and all(row["failure_reason"] == "exit code 1: simulated" for row in failed)
    assert not service.available_pools
