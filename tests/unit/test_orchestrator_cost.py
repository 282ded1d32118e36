"""The orchestrator jobs' own cost in `stbench status` and in a launched study's fetched
metadata: billed once ended, elapsed x price so far while running, '?' without a price.

Jobs are DescribeTrainingJob answers made by hand; S3 is moto's. Prices: ml.m5.large at
$0.36/h (a price table of the test's own), so 100 s cost $0.01.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stbench.launch.status import (
    ExperimentStatus,
    OrchestratorCost,
    collect,
    fetch_results,
    format_status,
    orchestrator_cost,
)
from stbench.model.naming import TAG_ENV, experiment_base
from stbench.model.spec import ExperimentSpec

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
PRICES = {"ml.m5.large": 0.36}
TAG = "cost"
BUCKET = "results-bucket"


def job(status: str, instance_type: str = "ml.m5.large", count: int = 1,
        billable: int | None = None, started_ago: float | None = None) -> dict[str, Any]:
    description: dict[str, Any] = {
        "TrainingJobStatus": status,
        "ResourceConfig": {"InstanceType": instance_type, "InstanceCount": count,
                           "VolumeSizeInGB": 30},
    }
    if billable is not None:
        description["BillableTimeInSeconds"] = billable
    if started_ago is not None:
        description["TrainingStartTime"] = NOW - timedelta(seconds=started_ago)
    return description


def test_an_ended_job_costs_its_billable_time_per_instance() -> None:
    cost = orchestrator_cost([job("Completed", count=2, billable=100)], PRICES, NOW)
    assert cost == OrchestratorCost(pytest.approx(0.02), running=False)
    assert cost.cell() == "0.020"


def test_a_running_job_costs_its_time_since_start_so_far_and_sums_with_earlier_runs() -> None:
    # a resumed experiment: its first orchestrator job was stopped after 100 billed seconds,
    # the second has run 200 s; SageMaker has billed neither yet for the running one
    cost = orchestrator_cost([job("Stopped", billable=100), job("InProgress", started_ago=200)],
                             PRICES, NOW)
    assert cost.usd == pytest.approx(0.03) and cost.running
    assert cost.cell() == "0.030 so far"
    starting = orchestrator_cost([job("InProgress")], PRICES, NOW)  # not on an instance yet
    assert starting.cell() == "0.000 so far"


def test_an_unpriced_instance_type_is_a_question_mark_never_zero() -> None:
    cost = orchestrator_cost([job("Completed", "ml.x9.huge", billable=100)], PRICES, NOW)
    assert cost.usd is None and cost.unpriced == "ml.x9.huge"
    rows = [ExperimentStatus("b", "RS", 0, "j-o00", "Completed", 2, 0, 0.5, 0.25, 1,
                             orchestrator=cost)]
    lines = format_status(rows).splitlines()
    assert lines[0].split("  ")[7:] == ["trials $", "orchestrator $", "warm reuse"]
    assert lines[1].split()[7:] == ["0.250", "?", "1/2"]
    assert lines[2] == ("?: ml.x9.huge has no price in the price table; add it there "
                        "(STBENCH_PRICES)")


class Directory:
    """A tag's jobs as SageMaker lists and describes them."""

    def __init__(self, jobs: dict[str, dict[str, Any]]):
        self.jobs = jobs
        self.described: list[str] = []

    def job_statuses(self) -> dict[str, str]:
        return {name: d["TrainingJobStatus"] for name, d in self.jobs.items()}

    def describe(self, name: str) -> dict[str, Any]:
        self.described.append(name)
        return self.jobs[name]


def orchestrator(seed: int, description: dict[str, Any]) -> dict[str, Any]:
    spec = ExperimentSpec(benchmark="synthetic_curves", method=("RS",), experiment_tag=TAG,
                          start_seed=seed, max_wallclock_time=60.0)
    return {**description, "HyperParameters": spec.to_hyperparameters(),
            "Environment": {TAG_ENV: TAG},
            "CheckpointConfig": {"S3Uri": f"s3://{BUCKET}/{TAG}/synthetic_curves/RS/{seed}/"
                                          "orchestrator/"}}


@pytest.fixture
def study(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # noqa: ANN201
    """Two experiments: seed 0 ended (billed 100 s), seed 1 resumed and running (an earlier
    job billed 100 s, the newest started about 1000 s ago); each uploaded metadata and a row."""
    for name, value in [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")]:
        monkeypatch.setenv(name, value)
    prices = tmp_path / "prices.yaml"
    prices.write_text("ml.m5.large: 0.36\n")
    monkeypatch.setenv("STBENCH_PRICES", str(prices))
    started = datetime.now(UTC) - timedelta(seconds=997)  # 0.110 for 8 s
    jobs = {
        f"{experiment_base(TAG, 'synthetic_curves', 'RS', 0)}-o00":
            orchestrator(0, job("Completed", billable=100)),
        f"{experiment_base(TAG, 'synthetic_curves', 'RS', 1)}-o00":
            orchestrator(1, job("Stopped", billable=100)),
        f"{experiment_base(TAG, 'synthetic_curves', 'RS', 1)}-o01":
            orchestrator(1, {**job("InProgress"), "TrainingStartTime": started}),
    }
    with mock_aws():
        session = boto3.session.Session()
        s3 = session.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        for seed, status in [(0, "completed"), (1, "running")]:
            key = f"{TAG}/synthetic_curves/RS/{seed}/orchestrator/{TAG}/synthetic_curves/RS/{seed}"
            meta = {"metric": "loss", "mode": "min", "status": status}
            s3.put_object(Bucket=BUCKET, Key=f"{key}/metadata.json", Body=json.dumps(meta))
            row = {"trial_id": 0, "status": "Completed", "wallclock_time": 5.0,
                   "metrics": {"loss": 0.5}, "config": {}, "cost_usd": 0.125}
            s3.put_object(Bucket=BUCKET, Key=f"{key}/results.jsonl", Body=json.dumps(row) + "\n")
        yield session, Directory(jobs)


def test_status_shows_each_experiment_s_orchestrator_cost(study: Any) -> None:
    session, directory = study
    rows = collect(session, directory, TAG)
    assert [r.orchestrator.cell() for r in rows] == ["0.010", "0.110 so far"]
    table = format_status(rows).splitlines()
    assert table[1:] == [
        "synthetic_curves  RS      0     Completed   1       0        0.5   0.125     0.010"
        "           0/1",
        "synthetic_curves  RS      1     InProgress  1       0        0.5   0.125     0.110 so far"
        "    0/1"]


def test_fetched_metadata_carries_the_orchestrator_cost_and_a_refetch_updates_it(
        study: Any, tmp_path: Path) -> None:
    session, directory = study
    assert fetch_results(session, directory, TAG, tmp_path / "results") == (2, 2)
    folder = tmp_path / "results" / TAG / "synthetic_curves" / "RS"
    meta = [json.loads((folder / str(seed) / "metadata.json").read_text()) for seed in (0, 1)]
    assert meta[0]["orchestrator_cost_usd"] == pytest.approx(0.01)
    assert meta[0]["orchestrator_running"] is False
    assert meta[1]["orchestrator_cost_usd"] == pytest.approx(0.11, abs=0.001)
    assert meta[1]["orchestrator_running"] is True
    # the resumed job has ended: fetched again, the copy says what it was billed
    newest = f"{experiment_base(TAG, 'synthetic_curves', 'RS', 1)}-o01"
    directory.jobs[newest] = {**directory.jobs[newest], "TrainingJobStatus": "Completed",
                              "BillableTimeInSeconds": 1100}
    fetch_results(session, directory, TAG, tmp_path / "results")
    meta1 = json.loads((folder / "1" / "metadata.json").read_text())
    assert meta1["orchestrator_cost_usd"] == pytest.approx(0.12)
    assert meta1["orchestrator_running"] is False
