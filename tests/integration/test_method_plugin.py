"""A user's method package (examples/stbench-method-example), pip-installed, runs on every
back-end: process trials, simulated, trainer containers, and SageMaker jobs on the local
endpoint (the method runs in the orchestrator, this process, in each); `stbench launch` ships
it to its orchestrator jobs, whose image lacks it (a compiled package is refused in one
line); a broken package is one line naming it.

The package is installed with pip into a folder of its own (`example_method.py`), put on
sys.path for the test only: the shared virtual environment and other tests never see it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from example_method import install_example, on_path
from sagemaker_endpoint import endpoint, run_in_process  # noqa: F401  (the module's fixture)
from test_launch_emulator import (
    launch_args,
    pushed,  # noqa: F401  (the module's fixture)
    start_endpoint,
    wait_for_orchestrators,
)
from test_launch_emulator import run as run_cli

from stbench.cli.main import main
from stbench.launch.remote import plan_launch
from stbench.methods.registry import all_methods
from stbench.model.code_package import METHODS_CHANNEL
from stbench.model.method_args import MethodArgs
from stbench.model.spec import ExperimentSpec
from stbench.orchestration.store import experiment_dir, read_rows

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_cost_estimate import NothingCreated  # noqa: E402  (a launch target creating nothing)

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


def test_launch_ships_it_to_the_orchestrator_jobs(installed: None, tmp_path: Path) -> None:
    """Each orchestrator job gets the package as its `methods` channel; an orchestrator that
    unpacks it (a fresh process, without the installed package) has the method."""
    spec = ExperimentSpec(benchmark="synthetic_curves", method=("RS", "RSMSR"),
                          experiment_tag="plug",
                          method_args=(MethodArgs.parse("RSMSR:rank_cutoff=0.3"),))
    planned = plan_launch(spec, NothingCreated())
    assert [job.spec.variants()[0].label for job in planned] == ["RS", "RSMSR(rank_cutoff=0.3)"]
    (package,) = {job.methods for job in planned}
    assert package is not None
    for job in planned:
        channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
                    for c in job.request["InputDataConfig"]}
        assert channels[METHODS_CHANNEL] == f"{job.study_root}/code/{package.file_name}"
    root = tmp_path / "opt-ml"
    (root / "input" / "data" / METHODS_CHANNEL).mkdir(parents=True)
    (root / "input" / "data" / METHODS_CHANNEL / package.file_name).write_bytes(package.data)
    probe = ("import sys; from pathlib import Path; from stbench.cli.orchestrator import "
             "add_method_packages; from stbench.methods.registry import get_method; "
             "add_method_packages(Path(sys.argv[1])); m = get_method('RSMSR'); "
             "print(m.package, [s.name for s in m.settings])")
    result = subprocess.run([sys.executable, "-c", probe, str(root)], capture_output=True,
                            text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == (
        "stbench-method-example ['grace_time', 'grace_population', 'rank_cutoff']")


def test_launch_refuses_a_compiled_package_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    site = install_example(tmp_path)
    (site / "stbench_method_example" / "_speedups.so").write_bytes(b"\x7fELF")
    monkeypatch.delitem(sys.modules, "stbench_method_example", raising=False)
    with on_path(site):
        code = main(["launch", "--benchmark", "synthetic_curves", "--method", "RSMSR",
                     "--experiment_tag", "plug", "--role", "arn:aws:iam::123456789012:role/x",
                     "--s3_root", "s3://nowhere/x", "--region", "us-east-1", "--dry_run"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("stbench: error: package stbench-method-example holds compiled "
                          "modules (_speedups.so), which `stbench launch` does not ship: run "
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
        err = capsys.readouterr().err
        # studies of built-in methods (and their variants) need no installed package
        assert main(["run", "--backend", "simulated", "--benchmark", "synthetic_curves",
                     "--method", "ASHA", "--method_args", "ASHA:reduction_factor=4",
                     "--dry_run"]) == 0, capsys.readouterr().err
    finally:
        all_methods.cache_clear()
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


@pytest.mark.docker
@pytest.mark.slow
def test_launched_on_the_local_endpoint(
        package_dir: Path, pushed: dict[str, str],  # noqa: F811
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`stbench launch` with the package installed where it runs: the orchestrator jobs, in
    the orchestrator image, run both variants; `stbench status` and `results` name them."""
    monkeypatch.setenv("PYTHONPATH", str(package_dir))  # the CLI's processes: installed
    emulator = start_endpoint()
    try:
        launched = run_cli(emulator, *launch_args(
            emulator, pushed, "plugin", "plugin-bucket", "--method", "RSMSR", "--method_args",
            "RSMSR", "RSMSR:rank_cutoff=0.3", "--max_num_trials", "4"))
        assert launched.returncode == 0, launched.stderr[-2000:]
        assert "method packages: s3://plugin-bucket/studies/plugin/code/" in launched.stdout + \
            launched.stderr
        jobs = wait_for_orchestrators(emulator, "plugin", 2)
        ended = {n: (d["TrainingJobStatus"], d.get("FailureReason")) for n, d in jobs.items()
                 if n.endswith("-o00")}
        assert {status for status, _ in ended.values()} == {"Completed"}, ended
        status = run_cli(emulator, "status", "--experiment_tag", "plugin")
        assert status.returncode == 0, status.stderr[-2000:]
        assert all(label in status.stdout for label in VARIANTS)
        report = run_cli(emulator, "results", "--experiment_tag", "plugin",
                         "--results_root", str(tmp_path))
        assert report.returncode == 0, report.stderr[-2000:]
        variants_ran(tmp_path, "plugin")
    finally:
        emulator.close()
