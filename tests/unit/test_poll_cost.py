"""A poll's cost does not grow with the trials already finished (issue 14, P6): with 1000
finished jobs, a poll describes and reads only the running ones, and does the same work as
with 10 finished. The work is counted as Python calls, not timed, so the test is exact."""

from __future__ import annotations

import sys
import time
from typing import Any

from simulated_jobs import SimulatedJobService

from stbench.backends.jobs.backend import JobBackend
from stbench.backends.jobs.job_requests import JobTemplate

RUNNING = 4
CONFIG = {"x": 0.5, "log_lr": -2.0, "width": 8}


def backend_with_finished(finished: int) -> tuple[JobBackend, SimulatedJobService, list[int]]:
    service = SimulatedJobService(epoch_seconds=(0.001, 0.001))
    template = JobTemplate(image="trainer", benchmark="synthetic_curves",
                           instance_type="ml.c5.large", checkpoint_root="s3://b/ckpt/",
                           output_root="s3://b/out/")
    backend = JobBackend(service, template, "poll", prices={"ml.c5.large": 0.119})
    done = [backend.start_trial({**CONFIG, "epochs": 1}).trial_id for _ in range(finished)]
    time.sleep(0.01)
    while backend.busy_trial_ids():
        time.sleep(0.005)
    statuses, _ = backend.fetch_status_results(done)
    assert {status for _, status in statuses.values()} == {"Completed"}
    service.epoch_seconds = (3600.0, 3600.0)  # from now on jobs run, and report nothing new
    running = [backend.start_trial({**CONFIG, "epochs": 1}).trial_id for _ in range(RUNNING)]
    backend.fetch_status_results(running)
    return backend, service, running


def one_poll(backend: JobBackend, running: list[int]) -> tuple[int, Any]:
    """What the loop does per iteration: statuses and new results of its running trials,
    then how many workers are busy. Returns the Python calls it made and the busy trials."""
    calls = 0

    def count(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        calls += event == "call"

    sys.setprofile(count)
    try:
        backend.fetch_status_results(running)
        busy = backend.busy_trial_ids()
    finally:
        sys.setprofile(None)
    return calls, busy


def test_a_poll_describes_and_reads_only_the_running_jobs() -> None:
    backend, service, running = backend_with_finished(1000)
    described = service.names_asked["DescribeTrainingJob"]
    read = service.names_asked["ReadMetrics"]
    polls = service.calls["DescribeTrainingJob"]
    _, busy = one_poll(backend, running)
    assert sorted(trial for trial, _ in busy) == running
    calls = service.calls["DescribeTrainingJob"] - polls
    assert calls == 1, "the loop's two questions (results, busy workers) share one poll"
    assert service.names_asked["DescribeTrainingJob"] - described == RUNNING * calls
    assert service.names_asked["ReadMetrics"] - read == RUNNING * calls


def test_a_poll_costs_the_same_with_1000_finished_trials_as_with_10() -> None:
    few, _, running_few = backend_with_finished(10)
    many, _, running_many = backend_with_finished(1000)
    one_poll(few, running_few)  # warm: first-call imports and caches
    one_poll(many, running_many)
    assert one_poll(many, running_many)[0] == one_poll(few, running_few)[0]
