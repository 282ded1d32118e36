"""`--max_cost`: what a study may spend, kept on the back-ends that run here (local processes,
simulation), priced as the SageMaker jobs the trials stand for; and the arithmetic behind it
(the job ledger's spent cost, the meter's running spells)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stbench.backends.jobs.job_ledger import JobLedger
from stbench.backends.jobs.job_requests import JobTemplate
from stbench.cli.main import main
from stbench.model.catalog import load_benchmark
from stbench.model.prices import load_prices
from stbench.model.trial_pricing import TrialPricing
from stbench.orchestration.cost_meter import CostMeter
from stbench.orchestration.store import experiment_dir, read_rows

LOOP_POLL_SECONDS = 1.0  # the loop waits at most this long between two looks at the budget


def final_rows(folder: Path) -> dict[int, dict]:
    return {row["trial_id"]: row for row in read_rows(folder)}


def check_cost_budget(folder: Path, max_cost: float, n_workers: int) -> dict:
    """The experiment ended `completed` at its cost budget, and its rows' summed cost stays
    within the budget plus what the running trials spend in one poll interval (with as much
    again for a loaded machine's slow iteration)."""
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["status"] == "completed"
    assert metadata["reason"] == f"cost budget of ${max_cost:g} used"
    trials = final_rows(folder)
    spent = sum(row["cost_usd"] for row in trials.values())
    overrun = n_workers * metadata["cost_usd_per_hour"] * 2 * LOOP_POLL_SECONDS / 3600
    assert max_cost <= spent <= max_cost + overrun, (spent, max_cost)
    assert metadata["spent_usd"] == pytest.approx(spent, rel=1e-3)
    assert set(row["status"] for row in trials.values()) <= {"Completed", "Stopped"}
    assert metadata["cost_estimated"] is True
    return metadata


def test_local_trials_stop_at_the_cost_budget_priced_as_sagemaker_jobs(tmp_path: Path) -> None:
    """2 workers of synthetic_curves priced at ml.c5.xlarge ($0.204/h): $0.0015 is ~13 s."""
    code = main(["run", "--benchmark", "synthetic_curves", "--method", "RS", "--n_workers", "2",
                 "--max_cost", "0.0015", "--max_wallclock_time", "120", "--random_seed", "3",
                 "--experiment_tag", "budget", "--results_root", str(tmp_path)])
    assert code == 0
    folder = experiment_dir(tmp_path, "budget", "synthetic_curves", "RS", 0)
    metadata = check_cost_budget(folder, 0.0015, n_workers=2)
    assert metadata["cost_instance_type"] == "ml.c5.xlarge"
    assert metadata["elapsed_seconds"] < 60, "the cost budget ended it, not the time budget"


def test_simulated_trials_stop_at_the_cost_budget_in_simulated_time(tmp_path: Path) -> None:
    """Simulated seconds are priced like real ones: quality per dollar without spending any."""
    code = main(["run", "--backend", "simulated", "--benchmark", "synthetic_curves",
                 "--method", "ASHA", "--n_workers", "4", "--max_cost", "0.001",
                 "--max_wallclock_time", "600", "--random_seed", "3", "--jobs", "1",
                 "--experiment_tag", "simulated", "--results_root", str(tmp_path)])
    assert code == 0
    folder = experiment_dir(tmp_path, "simulated", "synthetic_curves", "ASHA", 0)
    metadata = check_cost_budget(folder, 0.001, n_workers=4)
    assert metadata["elapsed_seconds"] < 600


def test_a_resumed_experiment_keeps_what_it_spent_before(tmp_path: Path) -> None:
    """The budget holds across a resume: the earlier run's spending counts."""
    args = ["run", "--backend", "simulated", "--benchmark", "synthetic_curves", "--method",
            "RS", "--n_workers", "2", "--max_wallclock_time", "600", "--random_seed", "3",
            "--jobs", "1", "--experiment_tag", "again", "--results_root", str(tmp_path)]
    assert main([*args, "--max_cost", "0.0005"]) == 0
    folder = experiment_dir(tmp_path, "again", "synthetic_curves", "RS", 0)
    first = json.loads((folder / "metadata.json").read_text())["spent_usd"]
    metadata = json.loads((folder / "metadata.json").read_text())
    metadata["status"] = "interrupted"  # as if it had been killed at that point
    (folder / "metadata.json").write_text(json.dumps(metadata))
    assert main([*args, "--max_cost", "0.001", "--resume"]) == 0
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["reason"] == "cost budget of $0.001 used"
    assert first < 0.001 <= metadata["spent_usd"]
    spent_rows = sum(row["cost_usd"] for row in final_rows(folder).values())
    assert spent_rows == pytest.approx(metadata["spent_usd"], rel=0.01)


def test_a_cost_budget_needs_a_price(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown price never reads as $0: a budget that could not be kept is refused before
    anything is written."""
    prices = tmp_path / "prices.yaml"
    prices.write_text("ml.m5.large: 0.115\n")
    monkeypatch.setenv("STBENCH_PRICES", str(prices))
    code = main(["run", "--benchmark", "synthetic_curves", "--method", "RS", "--max_cost", "1",
                 "--results_root", str(tmp_path / "results")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "ml.c5.xlarge" in err and "STBENCH_PRICES" in err
    assert not (tmp_path / "results").exists()


def test_a_launch_with_a_budget_that_cannot_be_priced_creates_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Refused before any AWS call, not in every orchestrator job."""
    prices = tmp_path / "prices.yaml"
    prices.write_text("ml.m5.large: 0.115\n")
    monkeypatch.setenv("STBENCH_PRICES", str(prices))
    code = main(["launch", "--benchmark", "synthetic_curves", "--method", "RS", "--max_cost",
                 "5", "--experiment_tag", "priced", "--region", "us-east-1"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--max_cost 5 needs a price for ml.c5.xlarge" in err


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf"])
def test_a_cost_budget_must_be_a_positive_amount(value: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--benchmark", "synthetic_curves", "--method", "RS", "--max_cost", value,
                 "--results_root", str(tmp_path)])
    assert code == 2
    assert "--max_cost" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_local_trials_are_priced_at_the_sagemaker_type_not_the_shared_local_one() -> None:
    """resnet_cifar10 runs its 4 local workers on one ml.g4dn.12xlarge (4 GPUs); on SageMaker
    each trial is an ml.g4dn.xlarge job. Charging the 12xlarge per trial would count it four
    times over."""
    prices = load_prices()
    benchmark = load_benchmark("resnet_cifar10")
    for backend in ("local", "docker", "simulated"):
        pricing = TrialPricing.for_run(backend, "ml.g4dn.12xlarge", benchmark, prices)
        assert pricing.instance_type == "ml.g4dn.xlarge" and pricing.estimated
    on_sagemaker = TrialPricing.for_run("sagemaker", "ml.g5.xlarge", benchmark, prices)
    assert on_sagemaker.instance_type == "ml.g5.xlarge" and not on_sagemaker.estimated


def test_the_meter_prices_running_spells_and_adds_earlier_runs() -> None:
    meter = CostMeter(TrialPricing("ml.x", 3.6, True), spent_before=0.5)  # $0.001 a second
    meter.trial_started(0, now=100.0)
    meter.trial_started(1, now=100.0)
    assert meter.trial_ended(0, now=110.0) == {"cost_usd": pytest.approx(0.01)}
    meter.trial_started(0, now=120.0)  # a paused trial resumed
    assert meter.spent(now=130.0) == pytest.approx(0.5 + 0.01 + 0.03 + 0.01)
    assert meter.trial_ended(0, now=130.0) == {"cost_usd": pytest.approx(0.02)}
    unpriced = CostMeter(TrialPricing("ml.x", None, True))
    unpriced.trial_started(0, now=0.0)
    assert unpriced.spent(now=10.0) is None, "an unknown price is not $0"


def test_the_ledger_counts_running_jobs_and_waiting_pools_before_their_bills() -> None:
    """SageMaker bills a job once it ended: a budget read from bills alone would let the
    running trials spend their whole runtime. Price $3.6/h = $0.001 a second."""
    template = JobTemplate(image="i", benchmark="b", instance_type="ml.x", checkpoint_root="",
                           output_root="", role_arn="r", keep_alive_seconds=600)
    ledger = JobLedger(template, {"ml.x": 3.6})
    for trial_id, name in enumerate(["billed", "running", "starting", "pool"]):
        ledger.add(trial_id, name)
    ledger.update("billed", {"TrainingJobStatus": "Completed", "BillableTimeInSeconds": 100,
                             "TrainingEndTime": 900.0, "WarmPoolStatus": {
                                 "Status": "Terminated",
                                 "ResourceRetainedBillableTimeInSeconds": 50}})
    ledger.update("running", {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Training",
                              "CreationTime": 940.0, "TrainingStartTime": 950.0})
    ledger.update("starting", {"TrainingJobStatus": "InProgress", "SecondaryStatus": "Starting",
                               "CreationTime": 990.0})
    ledger.update("pool", {"TrainingJobStatus": "Completed", "BillableTimeInSeconds": 30,
                           "TrainingEndTime": 980.0, "WarmPoolStatus": {"Status": "Available"}})
    # billed 100 + 50 retained; running 50 s; starting: no instance yet; pool 30 + 20 waiting
    assert ledger.spent_usd(now=1000.0) == pytest.approx(0.25)
    assert JobLedger(template, {}).spent_usd(now=1000.0) is None
