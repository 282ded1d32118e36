"""Real studies with trials as local processes: layout, pairing, resume, failures, training."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stbench.cli.main import main
from stbench.orchestration.store import json_lines

FAST = ["--epoch_duration", "0.02"]


def read_rows(folder: Path) -> list[dict]:
    """Read as stbench reads it: a running study's last line may be half appended."""
    return json_lines((folder / "results.jsonl").read_text())


def read_reports(folder: Path) -> list[dict]:
    """Rows of metric reports (a trial stopped before its first report has one row without)."""
    return [row for row in read_rows(folder) if row["metrics"]]


def read_meta(folder: Path) -> dict:
    return json.loads((folder / "metadata.json").read_text())


def test_study_writes_layout_table_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["run", "--benchmark", "synthetic_curves", "--method", "RS", "ASHA",
                 "--num-seeds", "2", "--max_wallclock_time", "4", "--experiment-tag", "it",
                 "--results_root", str(tmp_path), "--random_seed", "3", *FAST])
    out = capsys.readouterr().out
    assert code == 0
    assert "RS" in out and "ASHA" in out and "rank" in out
    for method in ("RS", "ASHA"):
        for seed in (0, 1):
            folder = tmp_path / "it" / "synthetic_curves" / method / str(seed)
            meta = read_meta(folder)
            assert meta["status"] == "completed"
            assert meta["spec"]["random_seed"] == 3
            rows = read_rows(folder)
            assert rows, "every experiment records reports"
            assert all(0 <= r["wallclock_time"] <= 6 for r in rows)
            reports = [r for r in rows if r["metrics"]]
            assert all("loss" in r["metrics"] and "x" in r["config"] for r in reports)
            unreported = {r["trial_id"] for r in rows} - {r["trial_id"] for r in reports}
            assert all(r["status"] == "Stopped" for r in rows if r["trial_id"] in unreported)
            assert {r["status"] for r in rows} <= {"Completed", "Stopped"}
    png = tmp_path / "it" / "plots" / "synthetic_curves.png"
    assert png.read_bytes().startswith(b"\x89PNG")


def test_seeds_are_paired_across_methods_and_reproducible(tmp_path: Path) -> None:
    def first_configs(tag: str) -> tuple[list[dict], dict]:
        assert main(["run", "--benchmark", "synthetic_curves", "--method", "RS", "TPE",
                     "--max_num_trials", "2", "--max_wallclock_time", "20",
                     "--experiment_tag", tag, "--results_root", str(tmp_path),
                     "--random_seed", "11", *FAST]) == 0
        base = tmp_path / tag / "synthetic_curves"
        rows = read_reports(base / "RS" / "0")
        seeds = {m: read_meta(base / m / "0")["scheduler_seed"] for m in ("RS", "TPE")}
        return [r["config"] for r in rows if r["metrics"]["epoch"] == 1], seeds

    configs_a, seeds_a = first_configs("pair-a")
    configs_b, seeds_b = first_configs("pair-b")
    assert seeds_a["RS"] == seeds_a["TPE"]
    assert seeds_a == seeds_b
    assert sorted(map(json.dumps, configs_a)) == sorted(map(json.dumps, configs_b))


def test_interrupted_study_resumes_without_repeating_trial_ids(tmp_path: Path) -> None:
    args = [sys.executable, "-m", "stbench.cli.main", "run", "--benchmark", "synthetic_curves",
            "--method", "ASHA", "--max_wallclock_time", "10", "--experiment_tag", "resume",
            "--results_root", str(tmp_path), "--random_seed", "5", "--epoch_duration", "0.1"]
    folder = tmp_path / "resume" / "synthetic_curves" / "ASHA" / "0"
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if (folder / "results.jsonl").exists() and len(read_rows(folder)) >= 8:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert b"--resume" in err
    before = read_rows(folder)
    assert read_meta(folder)["status"] == "interrupted"
    elapsed_before = read_meta(folder)["elapsed_seconds"]
    assert elapsed_before < 10

    done = subprocess.run([*args, "--resume"], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    after = read_rows(folder)
    meta = read_meta(folder)
    assert meta["status"] == "completed" and meta["resumed"] is True
    old_ids = {r["trial_id"] for r in before}
    assert len(after) > len(before)
    assert [r["metrics"] for r in after[: len(before)]] == [r["metrics"] for r in before]
    new_ids = {r["trial_id"] for r in after[len(before):]}
    assert new_ids and min(new_ids) > max(old_ids), "no trial id repeats after a resume"
    interrupted = {r["trial_id"] for r in after if r["status"] == "Interrupted"}
    assert interrupted <= old_ids
    assert meta["elapsed_seconds"] >= 10, "the time budget counts the time before the resume"


def test_failing_trials_end_the_experiment_at_max_failures(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code = main(["run", "--benchmark", "synthetic_curves", "--method", "RS",
                 # one worker: with n, failures seen in one poll may pass the limit by n - 1
                 "--n_workers", "1",
                 "--max_wallclock_time", "30", "--max_failures", "2", "--experiment_tag", "fail",
                 "--results_root", str(tmp_path), "--failure_probability", "1.0", *FAST])
    assert code == 1
    folder = tmp_path / "fail" / "synthetic_curves" / "RS" / "0"
    meta = read_meta(folder)
    assert meta["status"] == "failed" and meta["failures"] == 2
    failed = [r for r in read_rows(folder) if r["status"] == "Failed"]
    assert failed and all("injected failure" in r["failure_reason"] for r in failed)
    assert "failed" in capsys.readouterr().err


def test_mlp_digits_trains_for_real(tmp_path: Path) -> None:
    code = main(["run", "--benchmark", "mlp_digits", "--method", "ASHA",
                 "--max_wallclock_time", "12", "--experiment_tag", "digits",
                 "--results_root", str(tmp_path), "--random_seed", "0"])
    assert code == 0
    rows = read_reports(tmp_path / "digits" / "mlp_digits" / "ASHA" / "0")
    best = min(r["metrics"]["val_error"] for r in rows)
    assert best < 0.15, "an MLP on digits reaches well under 15 % validation error"
    assert max(r["metrics"]["epoch"] for r in rows) > 1


def test_gbm_breast_cancer_trains_for_real(tmp_path: Path) -> None:
    code = main(["run", "--benchmark", "gbm_breast_cancer", "--method", "ASHA",
                 "--max_wallclock_time", "10", "--experiment_tag", "gbm",
                 "--results_root", str(tmp_path), "--random_seed", "0"])
    assert code == 0
    rows = read_reports(tmp_path / "gbm" / "gbm_breast_cancer" / "ASHA" / "0")
    assert min(r["metrics"]["val_logloss"] for r in rows) < 0.2
    assert min(r["metrics"]["val_error"] for r in rows) < 0.1
