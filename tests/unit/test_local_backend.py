"""The local process backend: trials forked by the supervisor, metrics, failures, stops."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from syne_tune.backend.trial_status import Status

from stbench.backends.process.backend import LocalProcessBackend

SCRIPT = """
import argparse, os, sys, time
from syne_tune import Reporter

parser = argparse.ArgumentParser()
parser.add_argument("--mode", default="ok")
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--st_checkpoint_dir")
args, _ = parser.parse_known_args()
report = Reporter()
print("hello from", os.getpid())
if args.mode == "crash":
    raise ValueError("learning rate too high")
if args.mode == "oom":
    os.kill(os.getpid(), 9)
if args.mode == "exit3":
    sys.exit(3)
for epoch in range(1, args.epochs + 1):
    if args.mode == "slow":
        time.sleep(1.0)
    report(epoch=epoch, loss=1.0 / epoch)
"""


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[LocalProcessBackend]:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    backend = LocalProcessBackend(script, tmp_path / "trials", stop_grace_seconds=2.0)
    backend.start_supervisor()
    yield backend
    backend.close()


def wait_done(backend: LocalProcessBackend, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while backend.busy_trial_ids():
        assert time.monotonic() < deadline, "trial did not finish"
        backend.wait_for_activity(0.5)


def test_trial_reports_every_epoch_and_completes(backend: LocalProcessBackend) -> None:
    trial = backend.start_trial({"mode": "ok", "epochs": 4})
    wait_done(backend)
    statuses, results = backend.fetch_status_results([trial.trial_id])
    assert statuses[trial.trial_id][1] == Status.completed
    assert [r["epoch"] for _, r in results] == [1, 2, 3, 4]
    assert any("hello from" in line for line in backend.stdout(trial.trial_id))


def test_crashing_script_fails_with_its_error(backend: LocalProcessBackend) -> None:
    trial = backend.start_trial({"mode": "crash"})
    wait_done(backend)
    statuses, _ = backend.fetch_status_results([trial.trial_id])
    assert statuses[trial.trial_id][1] == Status.failed
    assert "ValueError: learning rate too high" in backend.failure_reason(trial.trial_id)
    assert any("Traceback" in line for line in backend.stderr(trial.trial_id))


def test_exit_code_and_kernel_kill_are_failures_with_reasons(
    backend: LocalProcessBackend,
) -> None:
    exit3 = backend.start_trial({"mode": "exit3"})
    killed = backend.start_trial({"mode": "oom"})
    wait_done(backend)
    statuses, _ = backend.fetch_status_results([exit3.trial_id, killed.trial_id])
    assert statuses[exit3.trial_id][1] == Status.failed
    assert backend.failure_reason(exit3.trial_id).startswith("exit code 3")
    assert statuses[killed.trial_id][1] == Status.failed
    assert "SIGKILL" in backend.failure_reason(killed.trial_id)


def test_stop_ends_the_process_and_holds_the_worker_until_it_exits(
    backend: LocalProcessBackend,
) -> None:
    trial = backend.start_trial({"mode": "slow", "epochs": 30})
    backend.wait_for_activity(5.0)
    backend.stop_trial(trial.trial_id)
    assert backend.busy_trial_ids(), "a stopping trial still occupies its worker"
    wait_done(backend, timeout=10)  # without the stop it would run for 30 s
    statuses, _ = backend.fetch_status_results([trial.trial_id])
    assert statuses[trial.trial_id][1] == Status.stopped


def test_trial_ids_continue_after_a_resume(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    backend = LocalProcessBackend(script, tmp_path / "trials", first_trial_id=7)
    try:
        first = backend.start_trial({"mode": "ok", "epochs": 1})
        second = backend.start_trial({"mode": "ok", "epochs": 1})
        wait_done(backend)
    finally:
        backend.close()
    assert (first.trial_id, second.trial_id) == (7, 8)
    assert (tmp_path / "trials" / "8" / "std.out").is_file()


def test_parallel_trials_keep_their_reports_apart(backend: LocalProcessBackend) -> None:
    trials = [backend.start_trial({"mode": "ok", "epochs": n}) for n in (1, 2, 3, 4)]
    wait_done(backend)
    statuses, results = backend.fetch_status_results([t.trial_id for t in trials])
    assert all(status == Status.completed for _, status in statuses.values())
    per_trial = {t.trial_id: [r["epoch"] for tid, r in results if tid == t.trial_id]
                 for t in trials}
    expected = {t.trial_id: list(range(1, t.config["epochs"] + 1)) for t in trials}
    assert per_trial == expected


def test_negative_values_in_scientific_notation_reach_the_script(tmp_path: Path) -> None:
    """argparse reads `--x -1e-05` as two options; the `--x=-1e-05` form it reads as a value."""
    script = tmp_path / "neg.py"
    script.write_text(
        "import argparse\nfrom syne_tune import Reporter\n"
        "p = argparse.ArgumentParser(); p.add_argument('--x', type=float)\n"
        "args, _ = p.parse_known_args(); Reporter()(epoch=1, x=args.x)\n"
    )
    backend = LocalProcessBackend(script, tmp_path / "trials")
    try:
        trial = backend.start_trial({"x": -1e-05})
        wait_done(backend)
        statuses, results = backend.fetch_status_results([trial.trial_id])
    finally:
        backend.close()
    assert statuses[trial.trial_id][1] == Status.completed
    assert [r["x"] for _, r in results] == [-1e-05]
