"""A user benchmark's folder travels with its trials: its limits (one-line errors, exit 2,
before any job), a reproducible archive, and the trainer's side (unpack, requirements)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from stbench.cli.main import main
from stbench.model import code_package
from stbench.model.catalog import load_benchmark
from stbench.model.code_package import pack_benchmark
from stbench.trainer.code_channel import requirements_digest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from user_benchmark import WHEEL, write_user_benchmark, write_wheel  # noqa: E402

TRAINER = Path(sys.executable).parent / "stbench-trainer"


def run_docker_study(yaml: Path, tmp_path: Path) -> int:
    """`stbench run --backend docker` up to its checks: these limits fail before Docker."""
    return main(["run", "--benchmark", str(yaml), "--method", "RS", "--backend", "docker",
                 "--results_root", str(tmp_path / "results"), "--experiment_tag", "lim"])


def one_line_error(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_a_folder_over_the_size_limit_is_refused_before_any_job(
        tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    yaml = write_user_benchmark(tmp_path)
    monkeypatch.setattr(code_package, "MAX_CODE_BYTES", 4096)
    (yaml.parent / "big.bin").write_bytes(os.urandom(8192))
    assert run_docker_study(yaml, tmp_path) == 2
    err = one_line_error(capsys)
    assert "over the 50 MB" in err and "inputs" in err
    assert not (tmp_path / "results" / "lim").exists()


def test_a_symlink_leaving_the_folder_is_refused(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    yaml = write_user_benchmark(tmp_path)
    (tmp_path / "secret.txt").write_text("outside")
    (yaml.parent / "data.txt").symlink_to(tmp_path / "secret.txt")
    assert run_docker_study(yaml, tmp_path) == 2
    assert "outside the benchmark folder" in one_line_error(capsys)


def test_a_script_outside_the_folder_or_missing_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    yaml = write_user_benchmark(tmp_path)
    (tmp_path / "elsewhere.py").write_text("print('hi')\n")
    yaml.write_text(yaml.read_text().replace("script: train.py", "script: ../elsewhere.py"))
    assert run_docker_study(yaml, tmp_path) == 2
    assert "outside its folder" in one_line_error(capsys)
    yaml.write_text(yaml.read_text().replace("../elsewhere.py", "missing.py"))
    assert run_docker_study(yaml, tmp_path) == 2
    assert "missing.py not found" in one_line_error(capsys)


def test_the_archive_is_reproducible_and_named_by_its_content(tmp_path: Path) -> None:
    yaml = write_user_benchmark(tmp_path)
    first = pack_benchmark(load_benchmark(str(yaml)))
    (yaml.parent / "__pycache__").mkdir()
    (yaml.parent / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"\0")
    os.utime(yaml.parent / "train.py", (0, 0))
    again = pack_benchmark(load_benchmark(str(yaml)))
    assert (again.digest, again.data) == (first.digest, first.data), \
        "times and caches do not change the archive, so it is uploaded once per study"
    (yaml.parent / "helper.txt").write_text("8\n")
    assert pack_benchmark(load_benchmark(str(yaml))).digest != first.digest


def opt_ml_with_code(tmp_path: Path, yaml: Path) -> Path:
    package = pack_benchmark(load_benchmark(str(yaml)))
    root = tmp_path / "opt_ml"
    (root / "input" / "data" / "code").mkdir(parents=True)
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "data" / "code" / package.file_name).write_bytes(package.data)
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(
        {"stbench_benchmark": package.benchmark_file, "x": "0.5"}))
    return root


def run_trainer(root: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STBENCH_OPT_ML": str(root),
           "SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY": str(cache)}
    return subprocess.run([str(TRAINER), "train"], env=env, capture_output=True, text=True,
                          timeout=120)


def test_trainer_installs_requirements_once_per_warm_pool_cache(tmp_path: Path) -> None:
    root = opt_ml_with_code(tmp_path, write_user_benchmark(tmp_path))
    first = run_trainer(root, tmp_path / "cache")
    assert first.returncode == 0, first.stderr
    assert "installed requirements.txt" in first.stderr
    assert first.stdout.count("[tune-metric]") == 2
    reused = run_trainer(root, tmp_path / "cache")
    assert reused.returncode == 0, reused.stderr
    assert "already installed" in reused.stderr and "pip:" not in reused.stderr
    assert reused.stdout.count("[tune-metric]") == 2


def test_a_changed_wheel_behind_the_same_requirements_is_installed_again(
        tmp_path: Path) -> None:
    """requirements.txt names `./wheels/<wheel>`: a new build of that wheel under the same
    name is a new install folder, so a reused instance runs the new code."""
    yaml = write_user_benchmark(tmp_path)
    cache = tmp_path / "cache"
    first = run_trainer(opt_ml_with_code(tmp_path / "v1", yaml), cache)
    assert first.returncode == 0 and "installed requirements.txt" in first.stderr, first.stderr
    write_wheel(yaml.parent / "wheels", offset=0.5)  # x=0.5 now scores 0
    again = run_trainer(opt_ml_with_code(tmp_path / "v2", yaml), cache)
    assert again.returncode == 0, again.stderr
    assert "already installed" not in again.stderr and "installed requirements.txt" in again.stderr
    losses = [json.loads(line.split("[tune-metric]:", 1)[1])["loss"]
              for line in again.stdout.splitlines() if "[tune-metric]" in line]
    assert losses == [0.0, 0.0], again.stdout


def test_the_install_folder_is_keyed_by_the_files_requirements_name(tmp_path: Path) -> None:
    yaml = write_user_benchmark(tmp_path)
    folder = yaml.parent
    (folder / "extra.txt").write_text("./local_pkg\n")
    (folder / "local_pkg").mkdir()
    (folder / "local_pkg" / "setup.py").write_text("# v1\n")
    (folder / "requirements.txt").write_text(f"./wheels/{WHEEL}  # pinned\n-r extra.txt\n"
                                             "numpy>=1\n")
    key = requirements_digest(folder / "requirements.txt")
    (folder / "helper.txt").write_text("not named\n")
    assert requirements_digest(folder / "requirements.txt") == key
    (folder / "local_pkg" / "setup.py").write_text("# v2\n")  # named through -r extra.txt
    assert requirements_digest(folder / "requirements.txt") != key


def test_a_failed_install_is_the_failure_reason_with_pips_last_lines(tmp_path: Path) -> None:
    yaml = write_user_benchmark(tmp_path, requirements="./wheels/no-such-0.1-py3-none-any.whl\n")
    root = opt_ml_with_code(tmp_path, yaml)
    result = run_trainer(root, tmp_path / "cache")
    assert result.returncode == 2
    reason = (root / "output" / "failure").read_text()
    assert reason.startswith("installing requirements.txt failed (pip exit code 1)")
    assert "no-such-0.1-py3-none-any.whl" in reason, "pip's own words name the problem"
    assert not list((tmp_path / "cache").rglob("py3*")), "nothing half-installed is kept"


def test_local_process_trials_read_a_local_input_from_sm_channel(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """The same folder on `--backend local`: the script runs where it is, in the user's own
    environment (here the wheel unpacked onto PYTHONPATH), and finds the YAML's local input in
    SM_CHANNEL_EXTRA as a container trial does."""
    yaml = write_user_benchmark(tmp_path, data=True)
    with zipfile.ZipFile(yaml.parent / "wheels" / WHEEL) as wheel:
        wheel.extractall(tmp_path / "site")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site"))
    code = main(["run", "--benchmark", str(yaml), "--method", "RS", "--max_num_trials", "2",
                 "--n_workers", "1", "--max_wallclock_time", "60", "--experiment_tag", "here",
                 "--results_root", str(tmp_path / "results")])
    assert code == 0, capsys.readouterr().err
    results = tmp_path / "results" / "here" / "my_bench" / "RS" / "0" / "results.jsonl"
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert len({row["trial_id"] for row in rows}) == 2
    assert all(row["metrics"]["scale"] == 3 for row in rows)
