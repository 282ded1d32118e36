"""Issue 14 R3: throttled calls and capacity refusals never cost a trial and are counted; a
quota that never frees up ends the experiment (and a launch) after a bounded wait, with one
line saying why. The endpoint's refusal knob draws its own seeded share of creates.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from simulated_jobs import SimulatedJobService

from stbench.backends.jobs.backend import JobBackend
from stbench.backends.jobs.job_requests import JobTemplate, trial_request
from stbench.backends.jobs.job_service import CapacityError
from stbench.emulator.config import EmulatorConfig
from stbench.emulator.server import EndpointApp
from stbench.launch.remote import PlannedJob, launch
from stbench.methods.registry import MethodContext, get_method
from stbench.model.catalog import load_benchmark
from stbench.model.errors import UserError
from stbench.model.spec import ExperimentSpec
from stbench.orchestration.experiment import ExperimentLoop
from stbench.orchestration.loop_state import Budget
from stbench.orchestration.progress import Progress
from stbench.orchestration.store import METADATA, ResultStore

TEMPLATE = JobTemplate(image="trainer", benchmark="synthetic_curves",
                       instance_type="ml.c5.xlarge", checkpoint_root="s3://b/ckpt/",
                       output_root="s3://b/out/")


class NoCapacityEver(SimulatedJobService):
    """A training-job quota of 0 that nobody raises."""

    def create_training_job(self, request: dict[str, Any]) -> None:
        self.calls["CreateTrainingJob"] += 1
        raise CapacityError("ResourceLimitExceeded: the Service Quotas quota "
                            "'ml.c5.xlarge for training job usage' is used up (… is 0 Instances)")


def run_loop(service: SimulatedJobService, tmp_path: Path,
             **backend_options: Any) -> tuple[ResultStore, str]:
    """An RS experiment of 12 trials on the service; (its store, what it printed)."""
    bench = load_benchmark("synthetic_curves").with_fixed_values({"epochs": "5"})
    scheduler = get_method("RS").make_scheduler(MethodContext.for_benchmark(bench, 3))
    backend = JobBackend(service, TEMPLATE, "sim", throttle_base_seconds=0.001,
                         **backend_options)
    store = ResultStore(tmp_path / "exp", {"status": "new"})
    printed = io.StringIO()
    loop = ExperimentLoop(scheduler, backend, store, Budget(60, 3, 3, 12), bench.metric,
                          bench.mode, Progress("exp", stream=printed))
    try:
        loop.run()
    finally:
        store.flush(force=True)
    return store, printed.getvalue()


def test_throttles_and_refusals_cost_no_trial_and_are_counted(tmp_path: Path) -> None:
    service = SimulatedJobService(fault_rate=0.35, seed=5)
    store, printed = run_loop(service, tmp_path, capacity_wait_seconds=0.001)
    metadata = json.loads((tmp_path / "exp" / METADATA).read_text())
    assert metadata["status"] == "completed" and metadata["failures"] == 0
    assert {row["status"] for row in store.rows} == {"Completed"}
    retries = metadata["retries"]
    assert retries["capacity_refusals"] > 0 and retries["backoffs"] > 0
    assert retries["backoffs"] + retries["capacity_refusals"] == service.faults
    summary = printed.splitlines()[-1]
    assert "-> completed" in summary
    assert f"{retries['capacity_refusals']} capacity refusals" in summary


def test_a_quota_that_never_frees_up_fails_the_experiment_with_one_line(tmp_path: Path) -> None:
    service = NoCapacityEver()
    with pytest.raises(UserError):
        run_loop(service, tmp_path, capacity_wait_seconds=0.05, capacity_patience_seconds=0.5)
    metadata = json.loads((tmp_path / "exp" / METADATA).read_text())
    reason = metadata["reason"]
    assert metadata["status"] == "failed" and metadata["trials"] == 0
    assert reason.startswith("no capacity to start a trial job in 0.5 s of retrying: ")
    assert "'ml.c5.xlarge for training job usage'" in reason and "--max_capacity_wait" in reason
    assert "\n" not in reason
    assert metadata["retries"]["capacity_refusals"] == service.calls["CreateTrainingJob"] >= 3


class RefusingTarget:
    """A launch target whose account never has room for another orchestrator job."""

    def __init__(self) -> None:
        self.creates = 0

    def create(self, request: dict[str, Any]) -> None:
        self.creates += 1
        if self.creates > 100:
            raise RuntimeError("still retrying after 100 refusals: the wait is not bounded")
        raise ClientError({"Error": {"Code": "ResourceLimitExceeded",
                                     "Message": "ml.m5.large for training job usage"}},
                          "CreateTrainingJob")


def test_launch_gives_up_on_capacity_after_max_capacity_wait() -> None:
    spec = ExperimentSpec(benchmark="synthetic_curves", method=("RS",), experiment_tag="s",
                          max_capacity_wait=0.2)
    target = RefusingTarget()
    job = PlannedJob("s-synthetic-curves-rs-0", spec, {"TrainingJobName": "x"})
    with pytest.raises(UserError, match=r"no capacity to launch s-synthetic-curves-rs-0 in "
                                        r"0.2 s .*--max_capacity_wait"):
        launch([job], target, capacity_wait_seconds=0.01, note=lambda message: None)
    assert target.creates >= 2


class CountingService:
    """Where the endpoint sends the calls it does not refuse."""

    def __init__(self, config: EmulatorConfig):
        self.config = config
        self.handled: list[str] = []

    def handle(self, action: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        self.handled.append(body.get("TrainingJobName", action))
        return {}


def answers(config: EmulatorConfig, calls: int) -> list[str]:
    """The error code (or 'ok') of each of `calls` CreateTrainingJob requests."""
    app = EndpointApp(lambda environ, start: [b""], CountingService(config), seed=7)
    codes = []
    for index in range(calls):
        raw = json.dumps(trial_request(TEMPLATE, f"job-{index}", index, {"x": 0.5})).encode()
        body = b"".join(app({"HTTP_X_AMZ_TARGET": "SageMaker.CreateTrainingJob",
                             "CONTENT_LENGTH": str(len(raw)), "wsgi.input": io.BytesIO(raw),
                             "REQUEST_METHOD": "POST", "PATH_INFO": "/"},
                            lambda status, headers: None))
        codes.append(json.loads(body or b"{}").get("__type", "ok").rpartition("#")[2])
    return codes


def test_endpoint_refuses_a_seeded_share_of_creates_apart_from_throttling() -> None:
    throttled = answers(EmulatorConfig(throttle_fraction=0.3), 400)
    both = answers(EmulatorConfig(throttle_fraction=0.3, capacity_refusal_fraction=0.3), 400)
    assert [code == "ThrottlingException" for code in both] == [
        code == "ThrottlingException" for code in throttled], "throttling draws unchanged"
    passed = [code for code in both if code != "ThrottlingException"]
    refused = passed.count("ResourceLimitExceeded") / len(passed)
    assert 0.2 < refused < 0.4 and set(passed) == {"ok", "ResourceLimitExceeded"}
    assert both == answers(EmulatorConfig(throttle_fraction=0.3,
                                          capacity_refusal_fraction=0.3), 400)
