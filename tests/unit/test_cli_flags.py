"""On/off flags as `run` and `launch` read them: `--warm_pool` bare or with Syne Tune's 1 / 0,
`--no_quota_check`, and their trip to a remote orchestrator through hyperparameters."""

from __future__ import annotations

from pathlib import Path

import pytest

from stbench.cli.launch import study_from_args
from stbench.cli.main import spec_from_args
from stbench.model.spec import ExperimentSpec

TUTORIAL = Path(__file__).resolve().parents[2] / "examples" / "tutorial.yaml"  # warm_pool: true
RUN = ["--benchmark", "synthetic_curves", "--method", "RS"]


@pytest.mark.parametrize(
    ("given", "warm_pool"),
    [
        ([], False),
        (["--warm_pool"], True),
        (["--warm_pool", "1"], True),
        (["--warm_pool", "0"], False),
        (["--warm-pool=1"], True),
        (["--warm_pool", "true"], True),
    ],
)
def test_run_reads_warm_pool_bare_or_as_1_or_0(given: list[str], warm_pool: bool) -> None:
    assert spec_from_args([*RUN, *given]).warm_pool is warm_pool


def test_bare_warm_pool_leaves_benchmark_arguments_alone() -> None:
    spec = spec_from_args([*RUN, "--warm_pool", "--epochs", "5"])
    assert spec.warm_pool is True and spec.extra_args == {"epochs": "5"}


@pytest.mark.parametrize(("given", "warm_pool"), [(["--warm_pool", "0"], False),
                                                  (["--warm_pool", "1"], True), ([], True)])
def test_launch_flag_wins_over_the_study_file(given: list[str], warm_pool: bool) -> None:
    specs = study_from_args([str(TUTORIAL), *given]).study.specs
    assert [spec.warm_pool for spec in specs] == [warm_pool, warm_pool]


def test_flags_survive_the_trip_to_a_remote_orchestrator() -> None:
    spec = spec_from_args([*RUN, "--warm_pool", "1", "--no_quota_check"])
    assert spec.warm_pool is True and spec.no_quota_check is True
    assert ExperimentSpec.from_hyperparameters(spec.to_hyperparameters()) == spec


def test_skipping_the_quota_check_does_not_make_another_study() -> None:
    """A relaunch with --no_quota_check resumes the study its tag names."""
    checked = study_from_args([str(TUTORIAL)]).study
    unchecked = study_from_args([str(TUTORIAL), "--no_quota_check"]).study
    assert all(spec.no_quota_check for spec in unchecked.specs)
    assert unchecked.definition() == checked.definition()
