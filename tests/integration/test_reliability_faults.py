"""Issue 14 R1 and R3 through trainer containers: failing and SIGKILLed trials on the docker
back-end and on the SageMaker adapter against the local endpoint, and a study on an endpoint
that throttles 30 % of SageMaker and Logs calls and refuses 30 % of CreateTrainingJob calls.

`stbench run` runs in this process; the SageMaker set-up check is replaced by its result
(the endpoint's bucket, the local trainer image), since what is under test here is the
experiment, not the set-up checks (tests/integration/test_sagemaker_checks.py has those).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fault_runs import (
    FAULT_ARGS,
    NO_QUOTA_INSTANCE,
    FaultAudit,
    audit,
    epochs_in_order,
    faulty_endpoint,
)
from sagemaker_endpoint import Endpoint, run_in_process, running_endpoint

from stbench.cli.main import main
from stbench.orchestration.store import experiment_dir

pytestmark = pytest.mark.docker

FAULTY = faulty_endpoint(cold_start_seconds=0.2, warm_start_seconds=0.05, log_delay_seconds=0.5,
                         stop_grace_seconds=2.0, checkpoint_sync_seconds=30.0)
QUICK = ["--benchmark", "synthetic_curves", "--method", "RS", "--epochs", "3",
         "--epoch_duration", "0.2", "--max_wallclock_time", "120", "--random_seed", "2"]


@pytest.fixture(scope="module")
def faulty_endpoint(images: dict[str, str]) -> Iterator[Endpoint]:
    with running_endpoint(FAULTY) as started:
        yield started


@pytest.fixture
def sagemaker_run(faulty_endpoint: Endpoint, isolated_aws_env: None,
                  monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """`run(tag, *flags)`: `stbench run --backend sagemaker` on the endpoint, polling every
    0.2 s; returns its exit code."""

    def run(tag: str, *flags: str) -> int:
        return run_in_process(faulty_endpoint, monkeypatch, tmp_path, "r13",
                              "--experiment_tag", tag, *flags, poll_seconds=0.2)

    return run


def faults_audit(root: Path, tag: str) -> FaultAudit:
    folder = experiment_dir(root, tag, "synthetic_curves", "RS", 0)
    assert epochs_in_order(folder), "no report skipped or repeated"
    return audit(folder)


def check_failing_trials(found: FaultAudit, max_failures: int) -> None:
    assert found.status == "failed" and found.failures == max_failures == len(found.failed)
    assert found.failed[-1] == max(found.statuses), "no trial started after the last failure"
    assert found.lost == 0 and sum(found.stored.values()) > 0, "every report emitted is stored"
    assert all(found.reasons.values()), found.reasons
    assert found.sigkilled >= 1, found.reasons


def test_docker_trials_fail_and_are_killed_with_every_report_and_reason(
        images: dict[str, str], tmp_path: Path) -> None:
    code = main(["run", "--backend", "docker", "--experiment_tag", "faults", "--n_workers", "1",
                 "--max_failures", "2", "--results_root", str(tmp_path), *QUICK, *FAULT_ARGS])
    assert code == 1
    check_failing_trials(faults_audit(tmp_path, "faults"), max_failures=2)


def test_sagemaker_trials_fail_and_are_killed_with_every_report_and_reason(
        sagemaker_run: Any, tmp_path: Path) -> None:
    """On an endpoint that also throttles and refuses capacity: each FailureReason is the
    trainer's, never a throttle's."""
    assert sagemaker_run("faults", "--n_workers", "1", "--max_failures", "2", *QUICK,
                         *FAULT_ARGS) == 1
    found = faults_audit(tmp_path, "faults")
    check_failing_trials(found, max_failures=2)
    assert all("Throttling" not in r and "ResourceLimit" not in r for r in found.reasons.values())


def test_throttled_study_with_capacity_refusals_completes_and_counts_retries(
        sagemaker_run: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert sagemaker_run("throttled", "--n_workers", "2", "--max_num_trials", "6", *QUICK) == 0
    found = faults_audit(tmp_path, "throttled")
    assert found.status == "completed" and found.failures == 0
    assert set(found.statuses.values()) == {"Completed"} and len(found.statuses) == 6
    assert found.lost == 0
    assert found.retries["throttled_calls"] > 0 and found.retries["capacity_refusals"] > 0
    summary = [line for line in capsys.readouterr().err.splitlines() if "-> completed" in line]
    assert summary and f"{found.retries['capacity_refusals']} capacity refusals" in summary[-1]


def test_a_quota_that_never_frees_up_ends_the_experiment_with_one_line(
        sagemaker_run: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = sagemaker_run("noquota", "--instance_type", NO_QUOTA_INSTANCE, "--no_quota_check",
                         "--max_capacity_wait", "4", *QUICK)
    errors = [line for line in capsys.readouterr().err.splitlines()
              if line.startswith("stbench: error:")]
    assert code == 2 and len(errors) == 1
    assert "no capacity to start a trial job in 4 s of retrying" in errors[0]
    assert f"'{NO_QUOTA_INSTANCE} for training job usage'" in errors[0]
    found = faults_audit(tmp_path, "noquota")
    assert found.status == "failed" and found.reason in errors[0] and found.statuses == {}
