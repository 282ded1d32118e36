"""CLI errors: exit code 2, one `stbench: error:` line on stderr, nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stbench.cli.main import main, spec_from_args
from stbench.methods.registry import METHODS
from stbench.model.catalog import builtin_names
from stbench.orchestration.store import METADATA, experiment_dir

STBENCH = Path(sys.executable).parent / "stbench"  # the installed console script



def tree(folder: Path) -> list[str]:
    """Every path under folder, to show that a failed command wrote nothing."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def run_fails(capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str],
              expected: str) -> str:
    """Run the CLI, check the one-line error contract, return the error line."""
    before = tree(tmp_path)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("stbench: error: ")
    assert expected in lines[0]
    assert out == ""
    assert tree(tmp_path) == before
    assert not (tmp_path / "results").exists()
    return lines[0]


def run_args(tmp_path: Path, *args: str) -> list[str]:
    """`stbench run` arguments with the results root inside tmp_path."""
    return ["run", "--results_root", str(tmp_path / "results"), *args]


BAD_YAML = """\
name: mine
script: train.py
metric: loss
\tmode: min
"""


def test_unknown_benchmark_lists_valid_ones(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    line = run_fails(capsys, tmp_path, run_args(tmp_path, "--benchmark", "nope", "--method", "RS"),
                     "unknown benchmark 'nope'")
    assert f"valid ones: {', '.join(builtin_names())} (or a path" in line
    assert "gbm_breast_cancer, hartmann6_curves, hpobench_mlp_australian" in line


def test_unknown_method_lists_valid_ones(capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    argv = run_args(tmp_path, "--benchmark", "synthetic_curves", "--method", "RS", "SMAC")
    line = run_fails(capsys, tmp_path, argv, "unknown method 'SMAC'")
    assert f"valid ones: {', '.join(METHODS)}" in line


def test_unknown_benchmark_argument(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = run_args(tmp_path, "--benchmark", "synthetic_curves", "--method", "RS", "--foo", "1")
    line = run_fails(capsys, tmp_path, argv, "has no argument '--foo'")
    assert ("valid ones: epoch_duration, epochs, failure_probability, kill_probability, "
            "log_lr, width, x") in line


def test_out_of_range_benchmark_argument(capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    argv = run_args(tmp_path, "--benchmark", "synthetic_curves", "--method", "RS", "--x", "7")
    run_fails(capsys, tmp_path, argv, "allowed range is [-3.0, 3.0]")


def test_dangling_benchmark_argument(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = run_args(tmp_path, "--benchmark", "synthetic_curves", "--method", "RS", "--epochs")
    run_fails(capsys, tmp_path, argv, "unexpected argument '--epochs'")


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--n_workers", "0", "--n_workers must be positive, got 0"),
        ("--n-workers", "0", "--n_workers must be positive, got 0"),
        ("--num_seeds", "0", "--num_seeds must be at least 1, got 0"),
        ("--max_wallclock_time", "-1", "--max_wallclock_time must be positive, got -1.0"),
        ("--n_workers", "two", "argument --n_workers/--n-workers: invalid int value: 'two'"),
        ("--backend", "cloud", "invalid choice: 'cloud'"),
        ("--warm_pool", "maybe", "--warm_pool/--warm-pool: expected 1 or 0 (or no value)"),
    ],
)
def test_bad_run_flag(capsys: pytest.CaptureFixture[str], tmp_path: Path, flag: str, value: str,
                      expected: str) -> None:
    argv = run_args(tmp_path, "--benchmark", "synthetic_curves", "--method", "RS", flag, value)
    run_fails(capsys, tmp_path, argv, expected)


def test_bad_launch_flag(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["launch", "--benchmark", "synthetic_curves", "--method", "RS", "--warm_pool", "maybe"]
    run_fails(capsys, tmp_path, argv, "expected 1 or 0 (or no value), got 'maybe'")


@pytest.mark.parametrize("command", [["run", "--results_root", "RESULTS"],
                                     ["launch", "--experiment_tag", "t"]])
def test_misspelled_flag_is_named_by_run_and_launch(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path,
                                                    command: list[str]) -> None:
    """A misspelled flag lands among the benchmark's arguments; both commands plan alike, so
    both name the flag it was meant to be."""
    argv = [arg.replace("RESULTS", str(tmp_path / "results")) for arg in command]
    run_fails(capsys, tmp_path, [*argv, "--benchmark", "synthetic_curves", "--method", "RS",
                                 "--n_worker", "2"], "did you mean '--n_workers'?")


@pytest.mark.parametrize("command", [
    ["run", "--results_root", "RESULTS", "--backend", "sagemaker"],
    ["launch", "--experiment_tag", "t"],
])
def test_instance_type_sagemaker_does_not_train_on_stops_before_any_aws_call(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        command: list[str]) -> None:
    for name, value in [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1"),
                        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9")]:  # a call would fail there
        monkeypatch.setenv(name, value)
    argv = [arg.replace("RESULTS", str(tmp_path / "results")) for arg in command]
    line = run_fails(capsys, tmp_path, [*argv, "--benchmark", "synthetic_curves", "--method",
                                        "RS", "--instance_type", "ml.c5.large"],
                     "'ml.c5.large' is not a SageMaker training instance type")
    assert "ml.c5.xlarge" in line


def test_resume_without_tag(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = run_args(tmp_path, "--benchmark", "synthetic_curves", "--method", "RS", "--resume")
    run_fails(capsys, tmp_path, argv, "--resume needs the --experiment_tag")


def test_malformed_user_yaml(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("")
    path = tmp_path / "mine.yaml"
    path.write_text(BAD_YAML)
    argv = run_args(tmp_path, "--benchmark", str(path), "--method", "RS")
    run_fails(capsys, tmp_path, argv, f"{path}:4: malformed YAML")


def test_missing_user_yaml(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = run_args(tmp_path, "--benchmark", str(tmp_path / "absent.yaml"), "--method", "RS")
    run_fails(capsys, tmp_path, argv, "absent.yaml not found")


def test_results_root_under_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    argv = ["run", "--results_root", str(blocker / "results"), "--benchmark", "synthetic_curves",
            "--method", "RS"]
    run_fails(capsys, tmp_path, argv, f"results root {blocker / 'results'} is not writable")
    assert blocker.read_text() == "not a folder"


def test_results_root_is_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    argv = ["run", "--results_root", str(blocker), "--benchmark", "synthetic_curves",
            "--method", "RS"]
    run_fails(capsys, tmp_path, argv, "is not writable")


def test_existing_results_need_resume(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = tmp_path / "results"
    done = experiment_dir(root, "exp-1", "synthetic_curves", "ASHA", 1)
    done.mkdir(parents=True)
    (done / METADATA).write_text(json.dumps({"status": "completed"}))
    before = tree(tmp_path)
    argv = run_args(tmp_path, "--benchmark", "synthetic_curves", "--method", "RS", "ASHA",
                    "--num_seeds", "2", "--experiment_tag", "exp-1")
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert err.startswith(f"stbench: error: results already exist in {done}; pass --resume")
    assert tree(tmp_path) == before  # in particular, RS/0 and RS/1 were not started


def test_unknown_subcommand(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    line = run_fails(capsys, tmp_path, ["rnu", "--benchmark", "synthetic_curves"],
                     "unknown command 'rnu'")
    assert "valid ones: run, results, benchmarks, methods" in line


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--method", "RS"], "no benchmark given; pass --benchmark NAME (see `stbench "
                             "benchmarks`), or --from_study TAG or --blackbox NAME with "
                             "--backend simulated"),
        (["--benchmark", "synthetic_curves"],
         "no method given; pass --method NAME (see `stbench methods`)"),
    ],
)
def test_missing_required_flag(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                               argv: list[str], expected: str) -> None:
    """--benchmark can come from --from_study, so both are checked after parsing."""
    run_fails(capsys, tmp_path, run_args(tmp_path, *argv), expected)


def test_results_without_tag(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run_fails(capsys, tmp_path, ["results", "--results_root", str(tmp_path / "results")],
              "the following arguments are required: --experiment_tag")


def test_benchmarks_lists_every_builtin(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["benchmarks"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = [line for line in out.splitlines() if not line.startswith(" ")]  # not sources
    names = [line.split()[0] for line in lines[:-1]]
    assert names == builtin_names()
    assert {"gbm_breast_cancer", "hartmann6_curves", "mlp_digits", "mlp_friedman",
            "resnet_cifar10", "synthetic_curves", "fcnet_protein", "nb201_cifar10",
            "hpobench_mlp_vehicle"} <= set(names)
    assert "val_error (min)" in out and "tunes n_units" in out
    purposes = {line.split()[0]: line.split()[1] for line in lines[:-1]}
    tables = {name for name in names if name.startswith(("fcnet_", "nb201_", "hpobench_"))}
    assert len(tables) == 15
    assert {name for name, purpose in purposes.items() if purpose == "comparison"} == {
        "hartmann6_curves", "mlp_friedman", *tables}
    assert "loss (min, optimum -3.32237)" in out
    assert "optimum: the Hartmann-6 global minimum" in out  # each optimum with its source
    assert lines[-1].startswith("purpose: 'comparison' benchmarks separate HPO methods")


def test_methods_lists_every_registered_method(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["methods"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert [line.split()[0] for line in out.splitlines()] == list(METHODS)
    assert "multi-fidelity" in out and "full-fidelity" in out


def test_extra_args_are_parsed_as_benchmark_arguments() -> None:
    spec = spec_from_args(["--benchmark", "mlp_digits", "--method", "RS", "ASHA", "--epochs", "5",
                           "--n-units", "32", "--experiment-tag", "t1"])
    assert spec.method == ("RS", "ASHA")
    assert spec.extra_args == {"epochs": "5", "n_units": "32"}
    assert spec.experiment_tag == "t1"


def test_console_script_reports_one_line(tmp_path: Path) -> None:
    """The installed `stbench` entry point exits 2 with a single error line, no traceback."""
    result = subprocess.run(
        [str(STBENCH), "run", "--benchmark", "nope", "--method", "RS",
         "--results_root", str(tmp_path / "results")],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("stbench: error: unknown benchmark 'nope'")
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_docker_backend_without_an_engine_is_a_one_line_error(
        tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    code = main(["run", "--benchmark", "synthetic_curves", "--method", "RS", "--backend",
                 "docker", "--results_root", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "cannot reach the Docker engine" in err[0] and "or use --backend local" in err[0]
    assert not (tmp_path / "r").exists()


def test_images_push_without_an_engine_gives_the_same_advice_without_the_backend(
        tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """One Docker connection for every command: the same fix, and `--backend local` only
    where a study could use it."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    assert main(["images", "push"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "cannot reach the Docker engine" in line and "images/docker-up.sh as root" in line
    assert "--backend" not in line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--backend", "simulated", "--from_study", "nope"],
         "--from_study nope: no recorded study in"),
        (["--from_study", "nope", "--benchmark", "synthetic_curves"],
         "--from_study is for --backend simulated"),
        (["--backend", "simulated", "--benchmark", "mlp_digits"],
         "--backend simulated needs recorded curves or curves in code"),
    ],
)
def test_simulated_backend_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                  args: list[str], expected: str) -> None:
    run_fails(capsys, tmp_path, run_args(tmp_path, "--method", "ASHA", *args), expected)
