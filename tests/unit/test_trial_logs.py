"""A job trial's log lands in `trials/<id>/std.out` of the experiment folder, read once from
the job service when the job has ended (CloudWatch Logs on SageMaker), so a failed trial can
be read where its results are; reading it never costs a poll anything."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from syne_tune.backend.trial_status import Status
from test_job_backend import TEMPLATE, FakeJobService

from stbench.backends.jobs.backend import JobBackend
from stbench.backends.jobs.sagemaker_logs import read_job_log
from stbench.backends.jobs.trial_logs import job_header
from stbench.model.job_statuses import COMPLETED, FAILED

GROUP = "/aws/sagemaker/TrainingJobs"


class LoggingJobService(FakeJobService):
    """Ended jobs have a log, as CloudWatch keeps it; `log_errors` makes a read fail."""

    def __init__(self) -> None:
        super().__init__()
        self.logs: dict[str, list[str]] = {}
        self.log_errors: dict[str, Exception] = {}

    def job_log(self, name: str) -> list[str]:
        self.calls.append(("log", name))
        if name in self.log_errors:
            raise self.log_errors[name]
        return self.logs.get(name, [])


def backend_in(folder: Path, service: LoggingJobService, notes: list[str]) -> JobBackend:
    return JobBackend(service, TEMPLATE, "tag-bench-asha-0", capacity_wait_seconds=0,
                      on_note=notes.append, logs_dir=folder / "trials")


def end(service: LoggingJobService, name: str, status: str, log: list[str]) -> None:
    service.jobs[name]["TrainingJobStatus"] = status
    service.logs[name] = log


def test_a_failed_trials_log_is_read_once_and_kept_beside_its_results(tmp_path: Path) -> None:
    service, notes = LoggingJobService(), []
    backend = backend_in(tmp_path, service, notes)
    trial = backend.start_trial({"x": 1.0})
    (name,) = service.jobs
    for _ in range(3):  # polls while the job runs read no log
        backend.fetch_status_results([trial.trial_id])
    assert ("log", name) not in service.calls
    end(service, name, FAILED, ["epoch 1", "Traceback (most recent call last):",
                                "ValueError: lr too large"])
    for _ in range(3):
        statuses, _ = backend.fetch_status_results([trial.trial_id])
    assert statuses[trial.trial_id][1] == Status.failed
    assert service.calls.count(("log", name)) == 1
    path = tmp_path / "trials" / str(trial.trial_id) / "std.out"
    assert path.read_text().splitlines()[-1] == "ValueError: lr too large"
    assert backend.stdout(trial.trial_id)[0] == "epoch 1"
    assert notes == []


def test_a_resumed_trials_jobs_follow_one_another_in_its_log(tmp_path: Path) -> None:
    service, notes = LoggingJobService(), []
    backend = backend_in(tmp_path, service, notes)
    trial = backend.start_trial({"x": 1.0})
    backend.pause_trial(trial.trial_id)
    (first,) = service.jobs
    end(service, first, COMPLETED, ["first run"])
    backend.fetch_status_results([trial.trial_id])
    backend.resume_trial(trial.trial_id)
    second = next(n for n in service.jobs if n != first)
    end(service, second, COMPLETED, ["second run"])
    backend.fetch_status_results([trial.trial_id])
    assert backend.stdout(trial.trial_id) == ["first run", job_header(second), "second run"]


def test_a_log_that_cannot_be_read_is_noted_and_the_trial_still_completes(
        tmp_path: Path) -> None:
    service, notes = LoggingJobService(), []
    backend = backend_in(tmp_path, service, notes)
    trial = backend.start_trial({"x": 1.0})
    (name,) = service.jobs
    service.log_errors[name] = RuntimeError("AccessDeniedException: logs:FilterLogEvents")
    end(service, name, COMPLETED, [])
    statuses, _ = backend.fetch_status_results([trial.trial_id])
    assert statuses[trial.trial_id][1] == Status.completed
    assert any("could not keep the log of job" in note and "AccessDenied" in note
               for note in notes)


@pytest.fixture
def logs() -> Any:
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with mock_aws():
            yield boto3.client("logs", region_name="us-east-1")
    finally:
        for key, value in old.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)


def put(client: Any, stream: str, lines: list[tuple[int, str]]) -> None:
    client.create_log_stream(logGroupName=GROUP, logStreamName=stream)
    client.put_log_events(logGroupName=GROUP, logStreamName=stream,
                          logEvents=[{"timestamp": t, "message": m} for t, m in lines])


def test_cloudwatch_log_of_one_job_all_hosts_in_time_order(logs: Any) -> None:
    logs.create_log_group(logGroupName=GROUP)
    job, later_run = "tag-bench-asha-0-t000000-r00", "tag-bench-asha-0-t000000-r01"
    start = int(time.time()) - 60  # CloudWatch drops events older than 14 days
    ms = start * 1000
    put(logs, f"{job}/algo-1-{start}", [(ms + 1000, "a1"), (ms + 3000, "a3")])
    put(logs, f"{job}/algo-2-{start}", [(ms + 2000, "b2")])
    put(logs, f"{later_run}/algo-1-{start + 10}", [(ms + 11_000, "other job")])
    assert read_job_log(logs, GROUP, job, created=float(start)) == ["a1", "b2", "a3"]


def test_a_job_that_never_logged_has_an_empty_log(logs: Any) -> None:
    assert read_job_log(logs, GROUP, "tag-bench-asha-0-t000000-r00") == []


def test_the_sagemaker_adapter_reads_an_ended_jobs_log_in_one_query(logs: Any) -> None:
    from stbench.backends.jobs.job_requests import trial_request
    from stbench.backends.jobs.sagemaker import SageMakerJobService

    service = SageMakerJobService(boto3.session.Session(region_name="us-east-1"),
                                  "tag-bench-asha-0")
    name = "tag-bench-asha-0-t000000-r00"
    service.create_training_job(trial_request(TEMPLATE, name, 0, {"x": 1.0}))
    logs.create_log_group(logGroupName=GROUP)
    start = int(time.time())
    put(logs, f"{name}/algo-1-{start}", [(start * 1000, "[tune-metric]: {\"loss\": 1.0}")])
    calls: list[str] = []
    service.logs.meta.events.register("before-call", lambda model, **_: calls.append(model.name))
    assert service.job_log(name) == ['[tune-metric]: {"loss": 1.0}']
    assert calls == ["FilterLogEvents"]
