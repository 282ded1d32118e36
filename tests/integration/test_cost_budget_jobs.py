"""`--max_cost` where trials are training jobs: trainer containers of the local Docker
engine (priced from the local adapter's billing at the benchmark's SageMaker type) and
SageMaker jobs on the local endpoint (priced from what SageMaker reports). Either way the
experiment ends `completed` at its cost budget and its rows' summed cost stays within the
budget plus what the running trials spend in one poll interval and in their stop.

`stbench run` runs in this process; the SageMaker set-up check is replaced by its result
(the endpoint's bucket, the local trainer image), as in test_reliability_faults.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sagemaker_endpoint as endpoints
from sagemaker_endpoint import Endpoint, run_in_process

from stbench.cli.main import main
from stbench.orchestration.store import experiment_dir, read_rows

pytestmark = pytest.mark.docker

QUICK = ["--benchmark", "synthetic_curves", "--method", "RS", "--epochs", "4",
         "--epoch_duration", "0.5", "--max_wallclock_time", "300", "--random_seed", "2",
         "--n_workers", "2"]
endpoint = endpoints.endpoint  # the module's endpoint (a fixture)
# ml.c5.xlarge ($0.204/h, the benchmark's type): $0.003 is about 53 trial-seconds
MAX_COST = 0.003


def check_ended_at_the_budget(folder: Path, poll_seconds: float, stop_seconds: float) -> None:
    """Each of the 2 workers may overrun by a poll interval and by its stop, and each trial
    by SageMaker's billing in whole seconds."""
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["status"] == "completed", metadata["reason"]
    assert metadata["reason"] == f"cost budget of ${MAX_COST:g} used"
    trials = {row["trial_id"]: row for row in read_rows(folder)}
    spent = sum(row["cost_usd"] for row in trials.values())
    price = metadata["cost_usd_per_hour"]
    overrun = price * (2 * (poll_seconds + stop_seconds) + len(trials)) / 3600
    assert MAX_COST * 0.5 < spent <= MAX_COST + overrun, (spent, overrun)
    assert metadata["elapsed_seconds"] < 200, "the cost budget ended it, not the time budget"
    assert set(row["status"] for row in trials.values()) <= {"Completed", "Stopped"}


def test_docker_trials_stop_at_the_cost_budget(images: dict[str, str], tmp_path: Path) -> None:
    code = main(["run", "--backend", "docker", "--max_cost", str(MAX_COST), "--experiment_tag",
                 "budget", "--results_root", str(tmp_path), *QUICK])
    assert code == 0
    folder = experiment_dir(tmp_path, "budget", "synthetic_curves", "RS", 0)
    check_ended_at_the_budget(folder, poll_seconds=1.0, stop_seconds=2.0)
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["cost_estimated"] is True and metadata["cost_instance_type"] == "ml.c5.xlarge"


def test_sagemaker_trials_stop_at_the_cost_budget(endpoint: Endpoint, isolated_aws_env: None,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    code = run_in_process(endpoint, monkeypatch, tmp_path, "budget", "--max_cost",
                          str(MAX_COST), "--experiment_tag", "budget", *QUICK,
                          poll_seconds=0.5)
    assert code == 0
    folder = experiment_dir(tmp_path, "budget", "synthetic_curves", "RS", 0)
    check_ended_at_the_budget(folder, poll_seconds=0.5 + 1.0, stop_seconds=2.0)
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["cost_estimated"] is False, "SageMaker's own billing"
