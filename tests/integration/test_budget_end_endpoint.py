"""The budget's end on SageMaker trial jobs (the local endpoint): reports a trial made in the
last seconds before it, whose log lines CloudWatch delivers after the loop stopped, are
stored; a wait for capacity that reaches it ends the experiment `completed`. And a resumed
experiment writes the cost of the jobs an earlier run left, ended ones included.

`stbench run` runs in this process; the SageMaker set-up check is replaced by its result
(the endpoint's bucket, the local trainer image), as in test_cost_budget_jobs.py.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sagemaker_endpoint import (
    CONFIG,
    INSTANCE,
    TEMPLATE,
    Endpoint,
    run_in_process,
    running_endpoint,
    service_of,
    start_trial,
    wait_ended,
)

from stbench.backends.jobs.backend import JobBackend
from stbench.model.naming import experiment_base
from stbench.model.prices import load_prices, trial_cost
from stbench.orchestration.store import experiment_dir, read_rows

pytestmark = pytest.mark.docker

LOG_DELAY = 3.0  # longer than a report's interval: the last reports arrive after the end
BUDGET = 25.0
STUDY = ["--benchmark", "synthetic_curves", "--method", "RS", "--epochs", "1000",
         "--epoch_duration", "0.5", "--random_seed", "3", "--n_workers", "1"]


@pytest.fixture(scope="module")
def slow_logs(images: dict[str, str]) -> Iterator[Endpoint]:
    """Logs delivered LOG_DELAY after they were written; no training-job quota for
    ml.m5.xlarge (AWS's default warm-pool quota 0 too)."""
    config = dataclasses.replace(CONFIG, log_delay_seconds=LOG_DELAY, quotas={
        **CONFIG.quotas, "ml.m5.xlarge for training job usage": 0})
    with running_endpoint(config) as started:
        yield started


def run_study(endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
              tag: str, *extra: str) -> tuple[int, Path, float]:
    started = time.monotonic()
    code = run_in_process(endpoint, monkeypatch, tmp_path, tag, "--experiment_tag", tag,
                          *STUDY, *extra)
    return code, experiment_dir(tmp_path, tag, "synthetic_curves", "RS", 0), \
        time.monotonic() - started


def test_reports_made_before_the_budgets_end_are_stored(
        slow_logs: Endpoint, isolated_aws_env: None, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """A trial reports every 0.5 s until the budget ends; its last 3 s of reports reach
    CloudWatch only after the loop stopped it. They are rows all the same, and nothing
    the trial printed after the end is."""
    code, folder, _ = run_study(slow_logs, monkeypatch, tmp_path, "late",
                                "--instance_type", INSTANCE,
                                "--max_wallclock_time", f"{BUDGET:g}")
    assert code == 0
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["status"] == "completed", metadata["reason"]
    times = sorted(row["wallclock_time"] for row in read_rows(folder)
                   if row["metrics"].get("epoch"))
    print(f"last stored report at {times[-1]:.2f} s of a {BUDGET:g} s budget "
          f"(log delay {LOG_DELAY:g} s); {len(times)} reports")
    assert times[-1] <= BUDGET
    assert times[-1] > BUDGET - 1.5, "the reports of the last seconds were not stored"


def test_a_capacity_wait_that_reaches_the_budget_ends_it_completed(
        slow_logs: Endpoint, isolated_aws_env: None, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """The training-job quota is 0: CreateTrainingJob is refused with ResourceLimitExceeded
    for as long as the budget lasts, and the wait ends with it, far before
    --max_capacity_wait."""
    code, folder, took = run_study(slow_logs, monkeypatch, tmp_path, "noquota",
                                   "--instance_type", "ml.m5.xlarge",
                                   "--max_wallclock_time", "8", "--max_capacity_wait", "600",
                                   "--no_quota_check")
    assert code == 0
    metadata = json.loads((folder / "metadata.json").read_text())
    print(f"quota 0, 8 s budget: {metadata['status']} after {took:.1f} s "
          f"({metadata['retries']['capacity_refusals']} refusals)")
    assert metadata["status"] == "completed"
    assert metadata["reason"] == "time budget of 8 s used"
    assert metadata["retries"]["capacity_refusals"] >= 3
    assert took < 30


def test_a_resume_writes_the_cost_of_jobs_that_ended_before_the_kill(
        slow_logs: Endpoint, isolated_aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run killed (kill -9) after its trial job ended, before it read the bill: the
    resumed run takes the trial over and hands out what SageMaker billed for it."""
    session = slow_logs.session(monkeypatch)
    base = experiment_base("resumed", "synthetic_curves", "RS", 0)
    name = start_trial(service_of(session, base), 0, "sleep 1")
    [ended] = wait_ended(session, name)
    prices = load_prices()
    backend = JobBackend(service_of(session, base), TEMPLATE, base, prices=prices)
    backend.recover()
    late = backend.late_annotations()
    billed = ended["BillableTimeInSeconds"]
    print(f"resumed: trial 0 ({name}) billed {billed} s, cost {late[0]['cost_usd']}")
    assert late[0]["job_name"] == name and late[0]["billable_seconds"] == billed
    assert late[0]["cost_usd"] == pytest.approx(
        trial_cost(prices, INSTANCE, 1, billed, 0))
    assert backend.new_trial_id() == 1
    backend.close(wait_seconds=5, pool_wait_seconds=0)
