"""Issue 14 R1: trials that fail (an exception) or are SIGKILLed mid-epoch (as the kernel's OOM
killer does), through the local process back-end: `max_failures` ends the experiment, every
report a trial emitted is stored, and each failed trial says why it failed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from fault_runs import FAULT_ARGS, FaultAudit, audit, epochs_in_order
from simulated_jobs import SimulatedJobService

from stbench.backends.jobs.backend import JobBackend
from stbench.backends.jobs.job_requests import JobTemplate
from stbench.benchmarks.synthetic_curves import fault_epochs
from stbench.cli.main import main
from stbench.methods.registry import MethodContext, get_method
from stbench.model.catalog import load_benchmark
from stbench.orchestration.experiment import ExperimentLoop
from stbench.orchestration.loop_state import Budget
from stbench.orchestration.progress import SilentProgress
from stbench.orchestration.store import ResultStore, experiment_dir


def faults(x: float, failure: float, kill: float) -> tuple[int | None, int | None]:
    args = argparse.Namespace(x=x, log_lr=-2.0, width=8, epochs=9, epoch_duration=0.1,
                              failure_probability=failure, kill_probability=kill)
    return fault_epochs(args)


def test_fault_draws_are_the_trials_own_and_independent() -> None:
    """The same config fails the same way on every back-end and run; the exception and the
    kill come from generators of their own (one shared seed would make them coincide)."""
    xs = [i / 100 for i in range(300)]
    drawn = [faults(x, 0.5, 0.5) for x in xs]
    assert drawn == [faults(x, 0.5, 0.5) for x in xs]
    both_or_neither = sum((fail is None) == (kill is None) for fail, kill in drawn)
    assert 0.35 < both_or_neither / len(xs) < 0.65
    same_epoch = sum(fail == kill for fail, kill in drawn if fail and kill)
    assert same_epoch < 0.3 * sum(1 for fail, kill in drawn if fail and kill)
    assert all(faults(x, 0.0, 0.0) == (None, None) for x in xs)


def run_faulty(tmp_path: Path, n_workers: int, max_failures: int, seed: str) -> FaultAudit:
    results = tmp_path / "results"
    code = main(["run", "--benchmark", "synthetic_curves", "--method", "RS",
                 "--experiment_tag", "faults", "--results_root", str(results),
                 "--random_seed", seed, "--n_workers", str(n_workers),
                 "--max_failures", str(max_failures), "--max_wallclock_time", "120",
                 "--epoch_duration", "0.02", *FAULT_ARGS])
    assert code == 1, "the experiment ends failed, at max_failures"
    folder = experiment_dir(results, "faults", "synthetic_curves", "RS", 0)
    assert epochs_in_order(folder), "no report skipped or repeated"
    return audit(folder)


def test_one_worker_ends_at_exactly_max_failures_with_every_report_and_reason(
        tmp_path: Path) -> None:
    found = run_faulty(tmp_path, n_workers=1, max_failures=3, seed="4")
    assert found.status == "failed" and found.failures == 3 == len(found.failed)
    assert found.reason == "3 trials failed (max_failures=3)"
    assert found.failed[-1] == max(found.statuses), "no trial started after the third failure"
    assert set(found.statuses.values()) <= {"Completed", "Failed"}
    assert found.lost == 0 and sum(found.stored.values()) > 0, "every report emitted is stored"
    assert all(found.reasons.values())
    assert found.sigkilled >= 1
    assert any(reason.startswith("exit code 1: RuntimeError: injected failure")
               for reason in found.reasons.values())


def test_parallel_trials_stop_at_max_failures_and_keep_their_reports(tmp_path: Path) -> None:
    """With 4 workers the experiment ends at the poll that sees the second failure: trials
    that failed in that same poll count too (they did fail), the others are stopped. Every
    report is stored but those a stopped trial printed after stbench stopped it (not
    results, as in Syne Tune)."""
    found = run_faulty(tmp_path, n_workers=4, max_failures=2, seed="11")
    assert found.status == "failed" and found.failures == len(found.failed) >= 2
    assert set(found.statuses.values()) <= {"Completed", "Failed", "Stopped"}
    assert found.lost == 0
    assert all(found.reasons.values())


class LateLogs(SimulatedJobService):
    """Every job fails, and its log is complete only 0.3 s after its end (CloudWatch lags)."""

    def metrics_complete(self, name: str) -> bool:
        ended = self.jobs[name].ended
        return ended is not None and time.monotonic() - ended > 0.3


def test_no_trial_starts_while_the_last_allowed_failure_is_being_read(tmp_path: Path) -> None:
    """A failed job whose last reports are still awaited keeps its worker: the next trial
    would otherwise start before the experiment knows max_failures is reached."""
    service = LateLogs(fail_jobs=True, metrics_delay_seconds=5.0)
    bench = load_benchmark("synthetic_curves").with_fixed_values({"epochs": "3"})
    template = JobTemplate(image="trainer", benchmark=bench.name, instance_type="ml.c5.large",
                           checkpoint_root="s3://b/ckpt/", output_root="s3://b/out/")
    loop = ExperimentLoop(get_method("RS").make_scheduler(MethodContext.for_benchmark(bench, 1)),
                          JobBackend(service, template, "late"),
                          ResultStore(tmp_path / "exp", {}), Budget(60, 2, 2, 20),
                          bench.metric, bench.mode, SilentProgress())
    outcome = loop.run()
    assert outcome.status == "failed" and outcome.failures == 2
    assert outcome.trials == 2 == len(service.jobs), "no third trial was started"
