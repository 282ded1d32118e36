"""The job backend's decisions, against an in-memory job service, and job naming rules."""

from __future__ import annotations

import time
from typing import Any

import pytest
from syne_tune.backend.trial_status import Status

from stbench.backends.jobs.backend import JobBackend
from stbench.backends.jobs.job_requests import JobTemplate, hyperparameters, trial_request
from stbench.backends.jobs.job_service import (
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    STOPPED,
    STOPPING,
    CapacityError,
)
from stbench.model.errors import UserError
from stbench.model.naming import MAX_JOB_NAME, experiment_base, job_name


class FakeJobService:
    """Jobs whose status the test sets; records every call the backend makes."""

    metrics_delay_seconds = 0.0

    def __init__(self, capacity_failures: int = 0):
        self.jobs: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, Any]] = []
        self.capacity_failures = capacity_failures
        self.metrics: dict[str, list[dict[str, Any]]] = {}

    def create_training_job(self, request: dict[str, Any]) -> None:
        self.calls.append(("create", request["TrainingJobName"]))
        if self.capacity_failures:
            self.capacity_failures -= 1
            raise CapacityError("ResourceLimitExceeded")
        self.jobs[request["TrainingJobName"]] = {"TrainingJobStatus": IN_PROGRESS}

    def describe_training_jobs(self, names: list[str]) -> dict[str, dict[str, Any]]:
        self.calls.append(("describe", tuple(names)))
        return {n: dict(self.jobs[n]) for n in names}

    def stop_training_job(self, name: str) -> None:
        self.calls.append(("stop", name))
        self.jobs[name]["TrainingJobStatus"] = STOPPING

    def release_warm_pool(self, name: str) -> None:
        self.calls.append(("release", name))

    def read_metrics(self, names: list[str]) -> dict[str, list[dict[str, Any]]]:
        return {n: self.metrics.pop(n) for n in names if n in self.metrics}

    def wait_for_activity(self, timeout: float) -> None:
        pass

    def close(self) -> None:
        self.calls.append(("close", None))


TEMPLATE = JobTemplate(image="stbench-trainer:latest", benchmark="synthetic_curves",
                       instance_type="ml.c5.large", checkpoint_root="s3://bucket/exp/ckpt/",
                       output_root="s3://bucket/exp/out/", keep_alive_seconds=600)


def make_backend(service: FakeJobService) -> JobBackend:
    return JobBackend(service, TEMPLATE, "tag-bench-asha-0", capacity_wait_seconds=0)


def test_stopping_job_holds_its_worker_and_ends_as_stopped() -> None:
    service = FakeJobService()
    backend = make_backend(service)
    trial = backend.start_trial({"x": 1.0})
    name = service.calls[0][1]
    backend.stop_trial(trial.trial_id)
    assert backend.busy_trial_ids() == [(trial.trial_id, Status.stopping)]
    service.jobs[name]["TrainingJobStatus"] = FAILED  # SIGTERM made the script exit non-zero
    assert backend.busy_trial_ids() == []
    statuses, _ = backend.fetch_status_results([trial.trial_id])
    assert statuses[trial.trial_id][1] == Status.stopped, "our stop is not a trial failure"


def test_status_and_metrics_of_all_trials_come_from_one_call_each() -> None:
    service = FakeJobService()
    backend = make_backend(service)
    trials = [backend.start_trial({"x": float(i)}) for i in range(8)]
    for name in service.jobs:
        service.metrics[name] = [{"epoch": 1, "loss": 0.5}]
    service.calls.clear()
    _, results = backend.fetch_status_results([t.trial_id for t in trials])
    assert [c[0] for c in service.calls] == ["describe"]
    assert len(results) == 8


def test_failed_job_reports_its_reason() -> None:
    service = FakeJobService()
    backend = make_backend(service)
    trial = backend.start_trial({"x": 1.0})
    name = service.calls[0][1]
    service.jobs[name] = {"TrainingJobStatus": FAILED, "FailureReason": "exit code 1: boom"}
    statuses, _ = backend.fetch_status_results([trial.trial_id])
    assert statuses[trial.trial_id][1] == Status.failed
    assert backend.failure_reason(trial.trial_id) == "exit code 1: boom"


def test_capacity_errors_are_retried_not_counted_as_failures() -> None:
    service = FakeJobService(capacity_failures=3)
    notes: list[str] = []
    backend = JobBackend(service, TEMPLATE, "base", capacity_wait_seconds=0, on_note=notes.append)
    trial = backend.start_trial({"x": 1.0})
    assert [c[0] for c in service.calls] == ["create"] * 4
    assert len(notes) == 3 and "ResourceLimitExceeded" in notes[0]
    assert backend.busy_trial_ids() == [(trial.trial_id, Status.in_progress)]


def test_close_stops_running_jobs_and_releases_every_warm_pool() -> None:
    service = FakeJobService()
    backend = make_backend(service)
    first = backend.start_trial({"x": 1.0})
    backend.start_trial({"x": 2.0})
    names = [c[1] for c in service.calls if c[0] == "create"]
    service.jobs[names[0]]["TrainingJobStatus"] = COMPLETED
    backend.fetch_status_results([first.trial_id])

    def finish_stops(timeout: float) -> None:
        for job in service.jobs.values():
            if job["TrainingJobStatus"] == STOPPING:
                job["TrainingJobStatus"] = STOPPED

    service.wait_for_activity = finish_stops  # type: ignore[method-assign]
    backend.close(wait_seconds=5)
    assert ("stop", names[1]) in service.calls and ("stop", names[0]) not in service.calls
    assert {c[1] for c in service.calls if c[0] == "release"} == set(names)
    assert service.calls[-1] == ("close", None)


def test_resumed_trial_runs_in_a_new_job_with_the_same_checkpoint_prefix() -> None:
    service = FakeJobService()
    backend = make_backend(service)
    trial = backend.start_trial({"x": 1.0})
    backend.pause_trial(trial.trial_id)
    service.jobs[service.calls[0][1]]["TrainingJobStatus"] = STOPPED
    backend.fetch_status_results([trial.trial_id])
    backend.resume_trial(trial.trial_id)
    created = [c[1] for c in service.calls if c[0] == "create"]
    assert created == ["tag-bench-asha-0-t000000-r00", "tag-bench-asha-0-t000000-r01"]


def test_request_shape_matches_create_training_job() -> None:
    request = trial_request(TEMPLATE, "job-t000003-r00", 3, {"x": 0.5, "width": 8, "act": "relu"})
    assert request["HyperParameters"] == {"stbench_benchmark": "synthetic_curves", "x": "0.5",
                                          "width": "8", "act": "relu"}
    assert request["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 600
    assert request["CheckpointConfig"]["S3Uri"] == "s3://bucket/exp/ckpt/3/"
    assert {"Key": "stbench:trial-id", "Value": "3"} in request["Tags"]
    with pytest.raises(UserError, match="100"):
        hyperparameters("b", {f"k{i}": i for i in range(100)})


def test_job_names_are_valid_unique_and_never_prefixes_of_each_other() -> None:
    base = experiment_base("my_study" * 6, "resnet_cifar10", "MOBSTER", 12)
    names = [job_name(base, trial, run) for trial in (1, 10, 100, 1000) for run in (0, 1, 10)]
    assert all(len(n) <= MAX_JOB_NAME for n in names)
    assert all(all(c.isalnum() or c == "-" for c in n) for n in names)
    assert len(set(names)) == len(names)
    assert not any(a != b and b.startswith(a) for a in names for b in names)
    assert experiment_base("t", "b", "m", 0) == "t-b-m-0"


def test_trailing_reports_are_awaited_but_the_worker_is_free_at_once() -> None:
    """CloudWatch may deliver the last reports after the job ended: the trial stays open for
    them, while its instance is already free for the next trial (and its warm pool)."""
    service = FakeJobService()
    service.metrics_delay_seconds = 0.2
    backend = make_backend(service)
    trial = backend.start_trial({"x": 1.0})
    name = service.calls[0][1]
    service.jobs[name]["TrainingJobStatus"] = COMPLETED
    assert backend.busy_trial_ids() == []
    statuses, _ = backend.fetch_status_results([trial.trial_id])
    assert statuses[trial.trial_id][1] == Status.in_progress
    service.metrics[name] = [{"epoch": 9, "loss": 0.1}]  # arrives late
    time.sleep(0.25)
    statuses, results = backend.fetch_status_results([trial.trial_id])
    assert statuses[trial.trial_id][1] == Status.completed
    assert [r["epoch"] for _, r in results] == [9]


def test_a_tag_owns_its_jobs_and_not_those_of_a_tag_that_starts_the_same() -> None:
    from stbench.model.naming import name_key, orchestrator_job_name, tag_matcher

    ours = tag_matcher("study")
    mine = experiment_base("study", "synthetic_curves", "ASHA", 3)
    other = experiment_base("study-2", "synthetic_curves", "ASHA", 3)
    assert ours(orchestrator_job_name(mine)) and ours(job_name(mine, 5, 1))
    assert not ours(orchestrator_job_name(other)) and not ours(job_name(other, 5, 1))
    assert name_key("study") in orchestrator_job_name(mine)
