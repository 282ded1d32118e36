"""The job backend's decisions, against an in-memory job service, and job naming rules."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
from syne_tune.backend.trial_status import Status

from stbench.backends.jobs.backend import JobBackend
from stbench.backends.jobs.job_requests import JobTemplate, hyperparameters, trial_request
from stbench.backends.jobs.job_service import CapacityError
from stbench.model.errors import UserError
from stbench.model.job_statuses import COMPLETED, FAILED, IN_PROGRESS, STOPPED, STOPPING
from stbench.model.naming import MAX_JOB_NAME, experiment_base, job_name


class FakeJobService:
    """Jobs whose status the test sets; records every call the backend makes. Like SageMaker
    it shows BillableTimeInSeconds once a job has ended, and ends a warm pool on release."""

    metrics_delay_seconds = 0.0

    def __init__(self, capacity_failures: int = 0):
        self.jobs: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, Any]] = []
        self.capacity_failures = capacity_failures
        self.metrics: dict[str, list[dict[str, Any]]] = {}
        self.incomplete: set[str] = set()  # ended jobs whose log still lacks reports
        self.release_errors: dict[str, Exception] = {}
        self.origins: dict[str, str] = {}  # job -> the job whose pool it took

    def create_training_job(self, request: dict[str, Any]) -> None:
        self.calls.append(("create", request["TrainingJobName"]))
        if self.capacity_failures:
            self.capacity_failures -= 1
            raise CapacityError("ResourceLimitExceeded")
        self.jobs[request["TrainingJobName"]] = {"TrainingJobStatus": IN_PROGRESS}

    def describe_training_jobs(self, names: list[str]) -> dict[str, dict[str, Any]]:
        self.calls.append(("describe", tuple(names)))
        out = {n: dict(self.jobs[n]) for n in names}
        for job in out.values():
            if job["TrainingJobStatus"] in (COMPLETED, FAILED, STOPPED):
                job.setdefault("BillableTimeInSeconds", 1)
        return out

    def stop_training_job(self, name: str) -> None:
        self.calls.append(("stop", name))
        self.jobs[name]["TrainingJobStatus"] = STOPPING

    def release_warm_pool(self, name: str) -> None:
        self.calls.append(("release", name))
        if name in self.release_errors:
            raise self.release_errors[name]
        pool = self.jobs[name].get("WarmPoolStatus")
        if pool and pool["Status"] == "Available":
            pool.update(Status="Terminated", ResourceRetainedBillableTimeInSeconds=120)

    def warm_pool_status(self, names: list[str]) -> dict[str, dict[str, Any] | None]:
        self.calls.append(("pools", tuple(names)))
        return {n: dict(self.jobs[n]["WarmPoolStatus"]) if "WarmPoolStatus" in self.jobs[n]
                else None for n in names}

    def previous_jobs(self) -> dict[str, dict[str, Any]]:
        return copy.deepcopy(self.jobs)

    def warm_pool_origins(self, names: list[str], since: float) -> dict[str, str]:
        self.calls.append(("origins", tuple(names)))
        return {n: self.origins[n] for n in names if n in self.origins}

    def read_metrics(self, names: list[str]) -> dict[str, list[dict[str, Any]]]:
        return {n: self.metrics.pop(n) for n in names if n in self.metrics}

    def metrics_complete(self, name: str) -> bool:
        return name not in self.incomplete

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
    service.wait_for_activity = finish_stops(service)  # type: ignore[method-assign]
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
    """CloudWatch may deliver the last reports after the job ended, however late: the trial
    stays open until its log is complete, while its instance is already free for the next
    trial (and its warm pool)."""
    service = FakeJobService()
    service.metrics_delay_seconds = 3600
    backend = make_backend(service)
    trial = backend.start_trial({"x": 1.0})
    name = service.calls[0][1]
    service.jobs[name]["TrainingJobStatus"] = COMPLETED
    service.incomplete.add(name)
    assert backend.busy_trial_ids() == []
    statuses, _ = backend.fetch_status_results([trial.trial_id])
    assert statuses[trial.trial_id][1] == Status.in_progress
    service.metrics[name] = [{"epoch": 9, "loss": 0.1}]  # arrives late, and completes the log
    service.incomplete.discard(name)
    statuses, results = backend.fetch_status_results([trial.trial_id])
    assert statuses[trial.trial_id][1] == Status.completed
    assert [r["epoch"] for _, r in results] == [9]


def test_a_log_that_never_completes_is_given_up_after_the_delay_with_a_note() -> None:
    service = FakeJobService()
    service.metrics_delay_seconds = 0.1
    notes: list[str] = []
    backend = JobBackend(service, TEMPLATE, "base", capacity_wait_seconds=0, on_note=notes.append)
    trial = backend.start_trial({"x": 1.0})
    name = service.calls[0][1]
    service.metrics[name] = [{"epoch": 1, "loss": 0.5}]
    service.jobs[name]["TrainingJobStatus"] = COMPLETED
    service.incomplete.add(name)
    statuses, _ = backend.fetch_status_results([trial.trial_id])
    assert statuses[trial.trial_id][1] == Status.in_progress and not notes
    time.sleep(0.15)
    statuses, _ = backend.fetch_status_results([trial.trial_id])
    assert statuses[trial.trial_id][1] == Status.completed
    assert len(notes) == 1 and name in notes[0] and "keeps the 1 read" in notes[0]


PRICES = {"ml.c5.large": 0.36}


def finish_stops(service: FakeJobService) -> Any:
    """The fake's wait: stopping jobs end, as SageMaker's do a little after StopTrainingJob."""
    def wait(timeout: float) -> None:
        for job in service.jobs.values():
            if job["TrainingJobStatus"] == STOPPING:
                job["TrainingJobStatus"] = STOPPED
    return wait


def test_stopped_and_paused_trials_are_billed_once_their_jobs_end() -> None:
    """ASHA retires a trial when it asks for the stop: the job's billable time is not known
    yet. It is handed out later, once, as a late annotation of that trial."""
    service = FakeJobService()
    backend = JobBackend(service, TEMPLATE, "base", capacity_wait_seconds=0, prices=PRICES)
    stopped, paused = backend.start_trial({"x": 1.0}), backend.start_trial({"x": 2.0})
    first, second = (c[1] for c in service.calls if c[0] == "create")
    backend.stop_trial(stopped.trial_id)
    backend.pause_trial(paused.trial_id)
    at_retirement = backend.trial_annotations(stopped.trial_id)
    backend.trial_annotations(paused.trial_id)
    assert at_retirement["billable_seconds"] is None and at_retirement["cost_usd"] is None
    assert backend.late_annotations() == {}
    service.jobs[first].update(TrainingJobStatus=STOPPED, BillableTimeInSeconds=40)
    service.jobs[second].update(TrainingJobStatus=STOPPED, BillableTimeInSeconds=20)
    backend.busy_trial_ids()
    late = backend.late_annotations()
    assert late[stopped.trial_id]["billable_seconds"] == 40
    assert late[stopped.trial_id]["cost_usd"] == pytest.approx(0.36 * 40 / 3600)
    assert late[paused.trial_id]["billable_seconds"] == 20
    assert backend.late_annotations() == {}, "each change is handed out once"
    backend.resume_trial(paused.trial_id)  # a new job: the trial costs both
    third = service.calls[-1][1]
    service.jobs[third].update(TrainingJobStatus=COMPLETED, BillableTimeInSeconds=5)
    backend.fetch_status_results([paused.trial_id])
    assert backend.trial_annotations(paused.trial_id)["billable_seconds"] == 25


def test_warm_pool_time_is_counted_once_the_pools_are_released_at_the_end() -> None:
    service = FakeJobService()
    backend = JobBackend(service, TEMPLATE, "base", capacity_wait_seconds=0, prices=PRICES)
    trial = backend.start_trial({"x": 1.0})
    name = service.calls[0][1]
    service.jobs[name].update(
        TrainingJobStatus=COMPLETED, BillableTimeInSeconds=60,
        WarmPoolStatus={"Status": "Available", "ResourceRetainedBillableTimeInSeconds": 0})
    backend.fetch_status_results([trial.trial_id])
    assert backend.trial_annotations(trial.trial_id)["cost_usd"] == pytest.approx(0.36 * 60 / 3600)
    backend.close(wait_seconds=1, pool_wait_seconds=1)
    assert ("release", name) in service.calls
    [late] = backend.late_annotations().values()
    assert late["warm_pool_status"] == "Terminated"
    assert late["warm_pool_retained_seconds"] == 120
    assert late["cost_usd"] == pytest.approx(0.36 * (60 + 120) / 3600)


def test_release_goes_on_past_an_error_and_says_how_to_clean_up() -> None:
    service = FakeJobService()
    notes: list[str] = []
    template = JobTemplate(**{**TEMPLATE.__dict__, "tags": {"stbench:experiment-tag": "study"}})
    backend = JobBackend(service, template, "base", capacity_wait_seconds=0,
                         on_note=notes.append)
    trials = [backend.start_trial({"x": float(i)}) for i in range(3)]
    names = [c[1] for c in service.calls if c[0] == "create"]
    for name in names:
        service.jobs[name].update(TrainingJobStatus=COMPLETED,
                                  WarmPoolStatus={"Status": "Available"})
    backend.fetch_status_results([t.trial_id for t in trials])
    service.release_errors[names[0]] = RuntimeError("AccessDeniedException: no")
    backend.close(wait_seconds=1, pool_wait_seconds=1)
    assert [c[1] for c in service.calls if c[0] == "release"] == names
    assert [service.jobs[n]["WarmPoolStatus"]["Status"] for n in names] == [
        "Available", "Terminated", "Terminated"]
    assert names[0] in notes[-1] and "stbench cleanup --experiment_tag study" in notes[-1]
    assert not any(names[1] in note or names[2] in note for note in notes)
    assert service.calls[-1] == ("close", None)


def test_a_pool_reused_by_another_experiments_job_is_counted_once_and_not_released() -> None:
    """Warm pools belong to the account: a matching job of another experiment may take ours."""
    service = FakeJobService()
    backend = JobBackend(service, TEMPLATE, "base", capacity_wait_seconds=0, prices=PRICES)
    first, second = backend.start_trial({"x": 1.0}), backend.start_trial({"x": 2.0})
    ours, other = (c[1] for c in service.calls if c[0] == "create")
    service.jobs[ours].update(TrainingJobStatus=COMPLETED, BillableTimeInSeconds=60,
                              WarmPoolStatus={"Status": "Reused",
                                              "ReusedByJob": "another-study-t000004-r00",
                                              "ResourceRetainedBillableTimeInSeconds": 30})
    service.jobs[other].update(TrainingJobStatus=COMPLETED, BillableTimeInSeconds=10)
    backend.fetch_status_results([first.trial_id, second.trial_id])
    annotations = backend.trial_annotations(first.trial_id)
    assert annotations["warm_pool_reused_by"] == "another-study-t000004-r00"
    assert annotations["cost_usd"] == pytest.approx(0.36 * (60 + 30) / 3600)
    assert backend.trial_annotations(second.trial_id)["started_on_warm_pool_of"] is None
    backend.close(wait_seconds=1, pool_wait_seconds=1)
    assert ("release", ours) not in service.calls, "a reused pool is gone: nothing to release"
    assert backend.late_annotations() == {}, "its kept time was counted already, once"


def test_a_trial_that_started_on_another_experiments_pool_says_so_at_the_end() -> None:
    """Only the pool's job names the job that took it; when that is another experiment's
    job, our experiment asks the service once at the end, for the jobs it has no link for."""
    service = FakeJobService()
    backend = JobBackend(service, TEMPLATE, "base", capacity_wait_seconds=0, prices=PRICES)
    first, second = backend.start_trial({"x": 1.0}), backend.start_trial({"x": 2.0})
    cold, warm = (c[1] for c in service.calls if c[0] == "create")
    for name in (cold, warm):
        service.jobs[name].update(TrainingJobStatus=COMPLETED, CreationTime=1000.0)
    service.origins[warm] = "other-exp-t000003-r00"
    backend.fetch_status_results([first.trial_id, second.trial_id])
    assert backend.trial_annotations(second.trial_id)["started_on_warm_pool_of"] is None
    backend.close(wait_seconds=1, pool_wait_seconds=1)
    assert [c for c in service.calls if c[0] == "origins"] == [("origins", (cold, warm))]
    assert backend.late_annotations() == {
        second.trial_id: {**backend.trial_annotations(second.trial_id),
                          "started_on_warm_pool_of": "other-exp-t000003-r00"}}


def test_a_resumed_experiment_records_what_the_earlier_runs_jobs_kept() -> None:
    """An orchestrator restarted mid-study: its earlier trials' rows say what that run knew
    then (pools Available). Pools reused or released after are recorded in those rows."""
    service = FakeJobService()
    kept, taken = "base-t000000-r00", "base-t000001-r00"
    service.jobs[kept] = {"TrainingJobStatus": COMPLETED, "BillableTimeInSeconds": 60,
                          "WarmPoolStatus": {"Status": "Available"}}
    service.jobs[taken] = {"TrainingJobStatus": COMPLETED, "BillableTimeInSeconds": 50,
                           "WarmPoolStatus": {"Status": "Reused", "ReusedByJob": "x-t000007-r00",
                                              "ResourceRetainedBillableTimeInSeconds": 7}}
    service.jobs["base-t000002-r00"] = {"TrainingJobStatus": COMPLETED}  # kept no pool
    backend = JobBackend(service, TEMPLATE, "base", capacity_wait_seconds=0, prices=PRICES)
    backend.recover()
    assert backend.new_trial_id() == 3
    late = backend.late_annotations()
    assert sorted(late) == [0, 1], "a trial whose jobs kept no pool: its rows say it all"
    assert {k: late[1][k] for k in ("warm_pool_status", "warm_pool_reused_by",
                                    "warm_pool_retained_seconds", "cost_usd")} == {
        "warm_pool_status": "Reused", "warm_pool_reused_by": "x-t000007-r00",
        "warm_pool_retained_seconds": 7, "cost_usd": pytest.approx(0.36 * 57 / 3600)}
    backend.close(wait_seconds=1, pool_wait_seconds=1)
    assert ("release", kept) in service.calls and ("release", taken) not in service.calls
    late = backend.late_annotations()
    assert list(late) == [0] and late[0]["warm_pool_status"] == "Terminated"
    assert late[0]["cost_usd"] == pytest.approx(0.36 * (60 + 120) / 3600)


def test_a_tag_owns_its_jobs_and_not_those_of_a_tag_that_starts_the_same() -> None:
    from stbench.launch.study_jobs import tag_matcher
    from stbench.model.naming import name_key, orchestrator_job_name

    ours = tag_matcher("study")
    mine = experiment_base("study", "synthetic_curves", "ASHA", 3)
    other = experiment_base("study-2", "synthetic_curves", "ASHA", 3)
    assert ours(orchestrator_job_name(mine)) and ours(job_name(mine, 5, 1))
    assert not ours(orchestrator_job_name(other)) and not ours(job_name(other, 5, 1))
    assert name_key("study") in orchestrator_job_name(mine)


def test_a_refused_create_leaves_nothing_for_close_to_trip_over() -> None:
    """CreateTrainingJob refused (e.g. a ValidationException): the error reaches the loop,
    which records the crash, and the experiment's close still ends cleanly."""
    service = FakeJobService()
    backend = make_backend(service)
    backend.start_trial({"x": 1.0})  # one running job, to be stopped by close
    service.create_training_job = _refuse  # type: ignore[method-assign]
    with pytest.raises(ValueError, match="refused"):
        backend.start_trial({"x": 2.0})
    backend.close(wait_seconds=0, pool_wait_seconds=0)
    assert ("stop", job_name("tag-bench-asha-0", 0)) in service.calls
    assert service.calls[-1] == ("close", None)


def _refuse(request: dict[str, Any]) -> None:
    raise ValueError("refused: instance type not valid")
