"""Hyperparameter values a shell would act on reach the training script as literal arguments,
never a shell (issue 14, R6): trials as local processes, as trainer containers, and as
SageMaker training jobs on the local SageMaker endpoint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from injection import (
    HOSTILE,
    LOCAL_ONLY,
    check_literal,
    echoed_arguments,
    run_args,
    run_cli,
    write_benchmark,
)


def test_local_process_trials_get_literal_arguments(tmp_path: Path) -> None:
    values = {**HOSTILE, **LOCAL_ONLY}
    benchmark = write_benchmark(tmp_path / "bench", values)
    done = run_cli(run_args(benchmark, tmp_path / "results"), tmp_path, dict(os.environ))
    assert done.returncode == 0, done.stderr[-3000:]
    check_literal(echoed_arguments(tmp_path / "results"), [tmp_path / "bench", tmp_path], values)


@pytest.mark.docker
@pytest.mark.slow
def test_container_trials_get_literal_arguments(tmp_path: Path, images: dict[str, str]) -> None:
    benchmark = write_benchmark(tmp_path / "bench", HOSTILE)
    done = run_cli(run_args(benchmark, tmp_path / "results", "--backend", "docker",
                            "--image", images["trainer"]), tmp_path, dict(os.environ))
    assert done.returncode == 0, done.stderr[-3000:]
    check_literal(echoed_arguments(tmp_path / "results"), [tmp_path / "bench", tmp_path], HOSTILE)
