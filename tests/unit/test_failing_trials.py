"""Issue 14 R1: trials that fail (an exception) or are SIGKILLed mid-epoch (as the kernel's OOM
killer does), through the local process back-end: `max_failures` ends the experiment, every
report a trial emitted is stored, and each failed trial says why it failed.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from stbench.benchmarks.synthetic_curves import fault_epochs
from stbench.cli.main import main
from stbench.model.container_contract import METRIC_TAG
from stbench.orchestration.store import METADATA, RESULTS, experiment_dir

SIGKILL_REASON = "killed by signal SIGKILL (out of memory?)"


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


def run_faulty(tmp_path: Path, n_workers: int, max_failures: int, seed: str) -> Path:
    results = tmp_path / "results"
    code = main(["run", "--benchmark", "synthetic_curves", "--method", "RS",
                 "--experiment_tag", "faults", "--results_root", str(results),
                 "--random_seed", seed, "--n_workers", str(n_workers),
                 "--max_failures", str(max_failures), "--max_wallclock_time", "120",
                 "--failure_probability", "0.3", "--kill_probability", "0.3",
                 "--epoch_duration", "0.02"])
    assert code == 1, "the experiment ends failed, at max_failures"
    return experiment_dir(results, "faults", "synthetic_curves", "RS", 0)


def emitted_reports(folder: Path) -> Counter[int]:
    """`[tune-metric]` lines each trial printed, from its std.out."""
    return Counter({int(log.parent.name): sum(line.startswith(METRIC_TAG) for line in
                                              log.read_text().splitlines())
                    for log in (folder / "trials").glob("*/std.out")})


def test_one_worker_ends_at_exactly_max_failures_with_every_report_and_reason(
        tmp_path: Path) -> None:
    folder = run_faulty(tmp_path, n_workers=1, max_failures=3, seed="4")
    rows = [json.loads(line) for line in (folder / RESULTS).read_text().splitlines()]
    status = {row["trial_id"]: row["status"] for row in rows}
    failed = sorted(t for t, s in status.items() if s == "Failed")
    metadata = json.loads((folder / METADATA).read_text())
    assert metadata["status"] == "failed" and metadata["failures"] == 3 == len(failed)
    assert metadata["reason"] == "3 trials failed (max_failures=3)"
    assert failed[-1] == max(status), "no trial started after the third failure"
    assert set(status.values()) <= {"Completed", "Failed"}
    stored = Counter(row["trial_id"] for row in rows if row["metrics"])
    assert +stored == +emitted_reports(folder), "every report emitted is stored, once"
    reasons = {row["trial_id"]: row.get("failure_reason") for row in rows
               if row["status"] == "Failed"}
    assert all(reasons.values())
    assert any(reason == SIGKILL_REASON for reason in reasons.values())
    assert any(reason.startswith("exit code 1: RuntimeError: injected failure")
               for reason in reasons.values())


def test_parallel_trials_stop_at_max_failures_and_keep_their_reports(tmp_path: Path) -> None:
    """With 4 workers the experiment ends at the poll that sees the second failure: trials
    that failed in that same poll count too (they did fail), the others are stopped; every
    report the stopped ones emitted before the end is stored, as a prefix of what they
    printed (reports after stbench stopped a trial are not results, as in Syne Tune)."""
    folder = run_faulty(tmp_path, n_workers=4, max_failures=2, seed="11")
    rows = [json.loads(line) for line in (folder / RESULTS).read_text().splitlines()]
    status = {row["trial_id"]: row["status"] for row in rows}
    metadata = json.loads((folder / METADATA).read_text())
    failed = [t for t, s in status.items() if s == "Failed"]
    assert metadata["status"] == "failed" and metadata["failures"] == len(failed) >= 2
    assert set(status.values()) <= {"Completed", "Failed", "Stopped"}
    stored = Counter(row["trial_id"] for row in rows if row["metrics"])
    emitted = emitted_reports(folder)
    for trial_id, trial_status in status.items():
        if trial_status == "Stopped":
            assert stored[trial_id] <= emitted[trial_id]
        else:
            assert stored[trial_id] == emitted[trial_id], trial_id
    epochs = [[row["metrics"]["epoch"] for row in rows if row["trial_id"] == t and row["metrics"]]
              for t in status]
    assert all(seen == list(range(1, len(seen) + 1)) for seen in epochs), "no report skipped"
    assert all(row.get("failure_reason") for row in rows if row["status"] == "Failed")
