"""A crashing orchestrator records `failed` with the reason, exits non-zero, and resumes.

Before issue 10, any exception but KeyboardInterrupt left `completed` in the metadata, so a
crashed experiment (a ValidationException from SageMaker, a bug) was skipped by `--resume`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stbench.backends.process.backend import LocalProcessBackend
from stbench.cli.main import main
from stbench.orchestration.store import METADATA, RESULTS, experiment_dir


def run_args(results: Path, budget: float, *extra: str) -> list[str]:
    return ["run", "--benchmark", "synthetic_curves", "--method", "RS", "--experiment_tag", "c",
            "--results_root", str(results), "--random_seed", "3", "--n_workers", "2",
            "--max_wallclock_time", str(budget), "--epoch_duration", "0.02", "--epochs", "3",
            *extra]


def test_crash_is_failed_with_reason_and_resume_reruns_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results"
    folder = experiment_dir(results, "c", "synthetic_curves", "RS", 0)
    original = LocalProcessBackend.fetch_status_results

    def crash_after_some_reports(self: LocalProcessBackend, trial_ids: list[int]):  # type: ignore[no-untyped-def]
        rows = (folder / RESULTS).read_text().splitlines() if (folder / RESULTS).exists() else []
        if len(rows) >= 4:
            raise RuntimeError("ValidationException: instance type not valid\nsecond line")
        return original(self, trial_ids)

    with monkeypatch.context() as patch:
        patch.setattr(LocalProcessBackend, "fetch_status_results", crash_after_some_reports)
        code = main(run_args(results, 60))
    assert code == 1
    err = capsys.readouterr().err
    assert "stbench: error: crashed: RuntimeError: ValidationException: instance type not valid;" \
        in err
    meta = json.loads((folder / METADATA).read_text())
    assert meta["status"] == "failed"
    assert meta["reason"] == "crashed: RuntimeError: ValidationException: instance type not valid"
    before = [json.loads(line) for line in (folder / RESULTS).read_text().splitlines()]
    assert len(before) >= 4

    assert main(run_args(results, 4, "--resume")) == 0
    meta = json.loads((folder / METADATA).read_text())
    assert meta["status"] == "completed" and meta["resumed"] is True
    after = [json.loads(line) for line in (folder / RESULTS).read_text().splitlines()]
    assert after[: len(before)] == [{**row, "status": row["status"] if row["status"] not in (
        "InProgress", "Stopping") else "Interrupted"} for row in before]
    old_ids = {row["trial_id"] for row in before}
    new_ids = {row["trial_id"] for row in after[len(before):]}
    assert new_ids and min(new_ids) > max(old_ids)  # trial ids never repeat
