"""Whole experiments through the job backend against a simulated job service with faults.

The simulator behaves like SageMaker where it matters to the decisions: jobs take time,
stopping takes time and holds the instance, warm pools wait after a job and are reused by a
matching job, and 35 % of calls are throttled and 35 % of creates hit ResourceLimitExceeded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from simulated_jobs import SimulatedJobService

from stbench.backends.jobs.backend import JobBackend
from stbench.backends.jobs.job_requests import JobTemplate
from stbench.methods.registry import MethodContext, get_method
from stbench.model.catalog import load_benchmark
from stbench.model.job_statuses import COMPLETED, STOPPED
from stbench.orchestration.experiment import ExperimentLoop
from stbench.orchestration.loop_state import Budget
from stbench.orchestration.progress import SilentProgress
from stbench.orchestration.store import ResultStore


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
    service = SimulatedJobService(fault_rate=0.35)
    outcome, store = run_experiment(service, tmp_path)
    assert service.faults / service.total_calls >= 0.3, "faults were injected on >= 30 % of calls"
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
    service = SimulatedJobService(fault_rate=0.35, fail_jobs=True, seed=1)
    outcome, store = run_experiment(service, tmp_path, method="RS", max_failures=3)
    # trials failing in the same poll all count; no new trial starts once the limit is hit
    assert outcome.status == "failed" and 3 <= outcome.failures <= 3 + 4
    assert outcome.trials <= outcome.failures + 4
    failed = [row for row in store.rows if row["status"] == "Failed"]
    assert failed and all(row["failure_reason"] == "exit code 1: simulated" for row in failed)
    assert not service.available_pools
