"""`stbench run --backend sagemaker` prints its cost estimate before its first job (moto
stands in for AWS, as in test_sagemaker_checks.py)."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import pytest
from test_sagemaker_checks import (  # noqa: F401 - fixtures
    IMAGE,
    REGION,
    ROLE,
    S3_ROOT,
    aws,
    fast_polls,
)


class Watched(io.StringIO):
    """stderr that notes how many training jobs existed when the estimate was written."""

    def __init__(self, count_jobs: Any):
        super().__init__()
        self.count_jobs = count_jobs
        self.jobs_at_estimate: list[int] = []

    def write(self, text: str) -> int:
        if text.startswith("cost estimate"):
            self.jobs_at_estimate.append(self.count_jobs())
        return super().write(text)


@pytest.mark.usefixtures("fast_polls")
def test_a_sagemaker_run_prints_its_estimate_before_its_first_job(
        aws: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    from stbench.cli.main import main

    sagemaker = aws["session"].client("sagemaker")
    stderr = Watched(lambda: len(sagemaker.list_training_jobs()["TrainingJobSummaries"]))
    monkeypatch.setattr(sys, "stderr", stderr)
    main(["run", "--benchmark", "synthetic_curves", "--method", "RS", "--backend", "sagemaker",
          "--role", ROLE, "--s3_root", S3_ROOT, "--image", IMAGE, "--region", REGION,
          "--max_failures", "1", "--n_workers", "2", "--max_wallclock_time", "60",
          "--experiment_tag", "priced", "--no_quota_check", "--results_root", str(tmp_path)])
    assert stderr.jobs_at_estimate == [0], stderr.getvalue()[-2000:]
    [line] = [line for line in stderr.getvalue().splitlines() if line.startswith("cost est")]
    assert line.endswith("ml.c5.xlarge $0.01 (trials: 1 experiment x 2 instances x 60 s) | "
                         "study total at most $0.01")
    assert sagemaker.list_training_jobs()["TrainingJobSummaries"]  # the run did create jobs
