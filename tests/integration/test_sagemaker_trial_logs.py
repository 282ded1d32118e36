"""A SageMaker trial end to end on the local SageMaker endpoint: its job carries the
benchmark's MetricDefinitions, and once it has ended the trial's `std.out` in the experiment
folder holds the job's CloudWatch log (the script's reports, the trainer's lines)."""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path

import boto3
import pytest
import sagemaker_endpoint as endpoints
from sagemaker_endpoint import CONFIG_OF_TRIAL, TEMPLATE, described, service_of
from syne_tune.backend.trial_status import Status

from stbench.backends.jobs.backend import JobBackend
from stbench.model.container_contract import end_line
from stbench.model.naming import experiment_base

pytestmark = pytest.mark.docker
endpoint, session = endpoints.endpoint, endpoints.session  # fixtures

BASE = experiment_base("logs", "synthetic_curves", "RS", 0)


def test_an_ended_trials_cloudwatch_log_is_its_std_out(
        session: boto3.session.Session, tmp_path: Path) -> None:
    notes: list[str] = []
    backend = JobBackend(service_of(session, BASE),
                         dataclasses.replace(TEMPLATE, metrics=("loss",)), BASE,
                         on_note=notes.append, logs_dir=tmp_path / "trials")
    trial = backend.start_trial(dict(CONFIG_OF_TRIAL))
    deadline, results = time.monotonic() + 120, []
    while True:
        statuses, new = backend.fetch_status_results([trial.trial_id])
        results += [result for _, result in new]
        if statuses[trial.trial_id][1] != Status.in_progress or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert statuses[trial.trial_id][1] == Status.completed, notes
    log = (tmp_path / "trials" / str(trial.trial_id) / "std.out").read_text()
    reports = [line for line in log.splitlines() if line.startswith("[tune-metric]: ")]
    assert len(reports) == CONFIG_OF_TRIAL["epochs"], log
    assert end_line(len(reports)) in log
    assert "stbench-trainer: training script completed" in log  # stderr is in the log too

    (job,) = backend.ledger.jobs()
    (definition,) = described(session, job)["AlgorithmSpecification"]["MetricDefinitions"]
    assert definition["Name"] == "loss"
    values = [float(re.search(definition["Regex"], line).group(1)) for line in reports]
    assert values == [result["loss"] for result in results]
