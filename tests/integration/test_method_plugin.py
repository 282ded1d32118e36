"""A user's method package (examples/stbench-method-example), pip-installed, runs on every
back-end: process trials, simulated, trainer containers, and SageMaker jobs on the local
endpoint (the method runs in the orchestrator, this process, in each); `stbench launch`,
whose orchestrator image lacks the package, refuses it in one line; a broken package is one
line naming it.

The package is installed with pip into a folder of its own (`example_method.py`), put on
sys.path for the test only: the shared virtual environment and other tests never see it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from example_method import install_example, on_path
from sagemaker_endpoint import endpoint, run_in_process  # noqa: F401  (the module's fixture)

from stbench.cli.main import main
from stbench.methods.registry import all_methods
from stbench.orchestration.store import experiment_dir, read_rows

VARIANTS = ("RSMSR", "RSMSR(rank_cutoff=0.3)")
FAST_TRIALS = ("--epochs", "3", "--epoch_duration", "0.05")


@pytest.fixture(scope="module")
def package_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_example(tmp_path_factory.mktemp("plugin"))


@pytest.fixture
def installed(package_dir: Path) -> Iterator[None]:
    with on_path(package_dir):
        yield


def variants_ran(results: Path, tag: str) -> dict[str, Counter]:
    """Each variant's metadata label and its trials' final statuses."""
    out = {}
    for label in VARIANTS:
        folder = experiment_dir(results, tag, "synthetic_curves", label, 0)
        meta = json.loads((folder / "metadata.json").read_text())
        assert meta["method"] == label and meta["status"] == "completed", meta
        assert meta["method_settings"]["rank_cutoff"] == (0.3 if "0.3" in label else 0.5)
        final = {row["trial_id"]: row["status"] for row in read_rows(folder)}
        out[label] = Counter(final.values())
    return out


def run(results: Path, tag: str, *flags: str) -> list[str]:
    return ["run", "--benchmark", "synthetic_curves", "--method", "RSMSR", "--method_args",
            "RSMSR", "RSMSR:rank_cutoff=0.3", "--experiment_tag", tag,
            "--results_root", str(results), *flags]


def test_listed_with_its_package_and_settings(installed: None,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["methods", "--details"]) == 0
    out = capsys.readouterr().out
    assert "RSMSR      multi-fidelity  random search, trials below the median at their " \
           "resource stopped (package stbench-method-example)" in out
    assert "    rank_cutoff (float, >= 0, <= 1; default 0.5): " in out


def test_runs_simulated_and_its_rule_stops_trials(installed: None, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code = main(run(tmp_path, "sim", "--backend", "simulated", "--max_wallclock_time", "300",
                    "--jobs", "2"))  # spawned processes find the package too
    assert code == 0, capsys.readouterr().err
    statuses = variants_ran(tmp_path, "sim")
    assert statuses["RSMSR"]["Stopped"] > 0
    assert statuses["RSMSR(rank_cutoff=0.3)"]["Stopped"] > statuses["RSMSR"]["Stopped"]


def test_runs_with_process_trials(installed: None, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    code = main(run(tmp_path, "proc", "--max_num_trials", "4", "--n_workers", "2",
                    "--max_wallclock_time", "60", *FAST_TRIALS))
    assert code == 0, capsys.readouterr().err
    variants_ran(tmp_path, "proc")


def test_launch_refuses_it_in_one_line(installed: None, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["launch", "--benchmark", "synthetic_curves", "--method", "RS", "RSMSR",
                 "--experiment_tag", "plug", "--role", "arn:aws:iam::123456789012:role/x",
                 "--s3_root", "s3://nowhere/x", "--region", "us-east-1", "--dry_run"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("stbench: error: method RSMSR comes from the installed package "
                          "stbench-method-example, which the orchestrator image lacks: run "
                          "the study with `stbench run`")


def test_a_broken_package_is_one_line_naming_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A distribution whose entry point names a module that is not there."""
    info = tmp_path / "broken_methods-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-methods\n"
                                   "Version: 1.0\n")
    (info / "entry_points.txt").write_text("[stbench.methods]\nNOPE = no_such_module:NOPE\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    all_methods.cache_clear()
    try:
        code = main(["methods"])
    finally:
        all_methods.cache_clear()
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err == ("stbench: error: method NOPE of package broken-methods (stbench.methods "
                   "entry point no_such_module:NOPE) does not load: ModuleNotFoundError: No "
                   "module named 'no_such_module'; fix or uninstall package broken-methods\n")


@pytest.mark.docker
@pytest.mark.slow
def test_runs_with_trainer_containers(installed: None, images: dict[str, str], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    code = main(run(tmp_path, "dock", "--backend", "docker", "--max_num_trials", "4",
                    "--n_workers", "2", "--max_wallclock_time", "120", *FAST_TRIALS))
    assert code == 0, capsys.readouterr().err
    variants_ran(tmp_path, "dock")


@pytest.mark.docker
@pytest.mark.slow
def test_runs_with_sagemaker_jobs_on_the_local_endpoint(
        installed: None, endpoint: object, isolated_aws_env: None,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    code = run_in_process(endpoint, monkeypatch, tmp_path, "plug", *run(
        tmp_path, "sm", "--max_num_trials", "3", "--n_workers", "2",
        "--max_wallclock_time", "240", *FAST_TRIALS)[1:], poll_seconds=0.5)
    assert code == 0, capsys.readouterr().err
    variants_ran(tmp_path, "sm")
