"""Warm pools as the SageMaker adapter sees them on the local SageMaker endpoint: read with
DescribeTrainingJob (never trusted from an older listing), reuse linked both ways, released
only while there, and left alone once another job (of any experiment: pools belong to the
account) has taken them. Every pool here was kept, reused or ended by the endpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import boto3
import pytest
import sagemaker_endpoint as endpoints
from sagemaker_endpoint import (
    NO_POOL_INSTANCE,
    POOLED,
    CallCounter,
    Gate,
    described,
    service_of,
    start_trial,
    wait_ended,
    wait_for,
)

from stbench.backends.jobs.sagemaker import SageMakerJobService
from stbench.model.job_statuses import COMPLETED
from stbench.model.naming import experiment_base

pytestmark = pytest.mark.docker
endpoint, session, gates = endpoints.endpoint, endpoints.session, endpoints.gates  # fixtures

BASE = experiment_base("pools", "synthetic_curves", "ASHA", 3)


def ended_with_pool(service: SageMakerJobService, trial_id: int) -> str:
    """A trial job that completed and kept a pool, as the adapter saw it end."""
    name = start_trial(service, trial_id, template=POOLED)
    wait_for(lambda: service.describe_training_jobs([name])[name]["TrainingJobStatus"]
             == COMPLETED, f"{name} to complete")
    assert service.describe_training_jobs([name])[name]["WarmPoolStatus"]["Status"] == \
        "Available"
    return name


def test_reuse_is_linked_both_ways_and_a_reused_pool_needs_no_release(
        session: boto3.session.Session, gates: Callable[[], Gate]) -> None:
    service = service_of(session, BASE)
    first = ended_with_pool(service, 0)
    second = start_trial(service, 1, gates().wait, template=POOLED)  # takes first's pool
    counter = CallCounter(service)

    service.release_warm_pool(first)  # read first: reused, so no UpdateTrainingJob
    assert counter.take() == {"DescribeTrainingJob": 1}
    status = service.describe_training_jobs([first, second])
    assert status[first]["WarmPoolStatus"]["Status"] == "Reused"
    assert status[first]["WarmPoolStatus"]["ReusedByJob"] == second
    assert status[second]["WarmPoolReusedFrom"] == first
    counter.take()
    service.release_warm_pool(first)  # released already: no second call
    pool = service.warm_pool_status([first])[first]  # Reused is final: no call either
    assert counter.take() == {}
    assert pool == described(session, first)["WarmPoolStatus"]
    assert described(session, second)["WarmPoolStatus"] == {"Status": "InUse"}


def test_warm_pools_are_read_with_describe_not_from_the_listing(
        session: boto3.session.Session, gates: Callable[[], Gate]) -> None:
    """The endpoint, as AWS may, leaves LastModifiedTime alone when only a pool changes: the
    polls still say Available after another experiment's job has taken the pool. The release
    reads the pool first and leaves it alone."""
    service = service_of(session, BASE)
    name = ended_with_pool(service, 0)
    other = service_of(session, experiment_base("other", "synthetic_curves", "ASHA", 0))
    theirs = start_trial(other, 4, gates().wait, template=POOLED)
    wait_for(lambda: described(session, name)["WarmPoolStatus"]["Status"] == "Reused",
             f"{theirs} to take the pool")
    counter = CallCounter(service)

    polled = service.describe_training_jobs([name])[name]["WarmPoolStatus"]
    assert polled["Status"] == "Available"  # what the polls (rightly) cannot know
    assert counter.take() == {}  # nothing of ours runs: no listing
    service.release_warm_pool(name)  # no UpdateTrainingJob: the pool is not ours any more
    assert counter.take() == {"DescribeTrainingJob": 1}
    reused = service.warm_pool_status([name])[name]  # final: no further call
    assert counter.take() == {}
    assert reused == described(session, name)["WarmPoolStatus"]
    assert reused["Status"] == "Reused" and reused["ReusedByJob"] == theirs
    assert described(session, theirs)["WarmPoolStatus"] == {"Status": "InUse"}  # untouched

    # Nothing on their job says whose pool it took: their experiment asks (at its end), one
    # listing of the account's reused pools, and is pointed to our job, outside its prefix.
    theirs_counter = CallCounter(other)
    created = described(session, theirs)["CreationTime"].timestamp()
    assert other.warm_pool_origins([theirs], created - 60) == {theirs: name}
    assert set(theirs_counter.take()) == {"ListTrainingJobs"}


def test_release_ends_an_available_pool_and_reads_its_retained_time(
        session: boto3.session.Session) -> None:
    service = service_of(session, BASE)
    name = ended_with_pool(service, 0)
    counter = CallCounter(service)
    service.release_warm_pool(name)
    assert counter.take() == {"DescribeTrainingJob": 1, "UpdateTrainingJob": 1}
    pool = service.warm_pool_status([name])[name]
    assert counter.take() == {"DescribeTrainingJob": 1}
    assert pool == described(session, name)["WarmPoolStatus"]
    assert pool["Status"] == "Terminated"
    assert isinstance(pool["ResourceRetainedBillableTimeInSeconds"], int)
    service.release_warm_pool(name)
    assert service.warm_pool_status([name]) == {name: pool}
    assert counter.take() == {}


def test_a_job_that_kept_no_pool_needs_no_release(session: boto3.session.Session) -> None:
    """With the default warm-pool quota of 0, a job with a keep-alive period keeps no pool:
    one DescribeTrainingJob at release says so, and nothing more is asked."""
    service = service_of(session, BASE)
    name = start_trial(service, 0, template=replace(POOLED, instance_type=NO_POOL_INSTANCE))
    [job] = wait_ended(session, name)
    assert job["TrainingJobStatus"] == COMPLETED and "WarmPoolStatus" not in job
    service.describe_training_jobs([name])  # the poll that saw it end (a job still running
    counter = CallCounter(service)  # is released with UpdateTrainingJob alone)
    service.release_warm_pool(name)
    assert service.warm_pool_status([name]) == {name: None}
    assert counter.take() == {"DescribeTrainingJob": 1}
