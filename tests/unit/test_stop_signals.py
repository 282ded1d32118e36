"""Stop signals (Ctrl-C, SIGTERM) leave no job running and no warm pool kept (issue 14 R4).

Two moments a signal used to leak: while the experiment was already cleaning up (a second
Ctrl-C cut the warm-pool release short), and inside CreateTrainingJob after the service had
accepted the job but before the back-end recorded it (nobody stopped that job).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from simulated_jobs import SimulatedJobService

from stbench.backends.jobs.backend import JobBackend
from stbench.backends.jobs.job_requests import JobTemplate
from stbench.cli.main import _raise_interrupt
from stbench.methods.registry import MethodContext, get_method
from stbench.model.catalog import load_benchmark
from stbench.model.job_statuses import IN_PROGRESS, STOPPING
from stbench.orchestration.experiment import ExperimentLoop
from stbench.orchestration.loop_state import Budget
from stbench.orchestration.progress import SilentProgress
from stbench.orchestration.store import ResultStore


class SignalledService(SimulatedJobService):
    """Jobs of an hour; a stop signal arrives at the chosen call, as the CLI gets it."""

    signal_at: str = ""
    calls_before_signal: int = 0

    def _signal(self, where: str) -> None:
        if where == self.signal_at:
            self.calls_before_signal -= 1
            if self.calls_before_signal < 0:
                self.signal_at = ""
                os.kill(os.getpid(), signal.SIGTERM)

    def create_training_job(self, request: dict[str, Any]) -> None:
        super().create_training_job(request)  # accepted: the job exists from here on
        self._signal("create")

    def release_warm_pool(self, name: str) -> None:
        self._signal("release")
        super().release_warm_pool(name)

    def previous_jobs(self) -> dict[str, dict[str, Any]]:
        return {name: {"TrainingJobStatus": job.status,
                       **({"WarmPoolStatus": dict(job.pool)} if job.pool else {})}
                for name, job in self.jobs.items()}


def run_until_signal(service: SignalledService, tmp_path: Path) -> None:
    signal.signal(signal.SIGTERM, _raise_interrupt)  # what the CLI installs
    bench = load_benchmark("synthetic_curves").with_fixed_values({"epochs": "3"})
    scheduler = get_method("RS").make_scheduler(MethodContext.for_benchmark(bench, 3))
    template = JobTemplate(image="trainer", benchmark=bench.name, instance_type="ml.c5.large",
                           checkpoint_root="s3://b/ckpt/", output_root="s3://b/out/",
                           keep_alive_seconds=300)
    backend = JobBackend(service, template, "sig", throttle_base_seconds=0.001)
    loop = ExperimentLoop(scheduler, backend, ResultStore(tmp_path / "exp", {}),
                          Budget(60, 2, 3, 20), bench.metric, bench.mode, SilentProgress())
    with pytest.raises(KeyboardInterrupt):
        loop.run()


def test_a_job_created_as_the_signal_came_is_stopped(tmp_path: Path) -> None:
    service = SignalledService(epoch_seconds=(100.0, 100.0))  # they would run on and on
    service.signal_at, service.calls_before_signal = "create", 1
    run_until_signal(service, tmp_path)
    assert len(service.jobs) == 2
    assert [n for n, j in service.jobs.items() if j.status in (IN_PROGRESS, STOPPING)] == []
    assert service.available_pools == {}


def test_a_signal_during_the_cleanup_waits_until_every_pool_is_released(
        tmp_path: Path) -> None:
    service = SignalledService(epoch_seconds=(0.01, 0.01))
    service.signal_at = "release"  # the experiment ends by its trial limit, then the signal
    run_until_signal(service, tmp_path)
    assert len(service.jobs) == 20
    assert service.available_pools == {}
    assert all(j.status not in (IN_PROGRESS, STOPPING) for j in service.jobs.values())
