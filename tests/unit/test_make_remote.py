"""`make remote` launches what `make run` would run: the same METHODS, BENCH (a name or a
YAML path), SEEDS and BUDGET, plus workers, warm pool and any other flags, and a tag that is
valid for a user benchmark's path too. The command make would run is parsed by `stbench
launch`'s own parser; one real run shows a path's default tag is accepted."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from stbench.cli.launch import study_from_args

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from user_benchmark import write_user_benchmark  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
# the venv is there already: make must not reinstall it
MAKE = ["make", "--no-print-directory", "-C", str(ROOT), "-o", ".venv/.installed"]
# and no variables of an outer make (`make test`) either
MAKE_VARIABLES = ("BENCH", "METHOD", "METHODS", "SEEDS", "BUDGET", "TAG", "N_WORKERS",
                  "WARM_POOL", "ARGS", "STUDY", "ROLE", "S3_ROOT", "IMAGE", "REGION",
                  "MAKEFLAGS", "MFLAGS", "MAKELEVEL")


def make(*args: str, dry_run: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in MAKE_VARIABLES}
    return subprocess.run([*MAKE, *(["-n"] if dry_run else []), *args], capture_output=True,
                          text=True, env=env, timeout=120)


def launched_argv(*args: str) -> list[str]:
    """The arguments `make remote` would give `stbench launch`."""
    result = make("remote", *args)
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if "stbench launch" in line]
    argv = shlex.split(line)
    assert argv[:2] == [".venv/bin/stbench", "launch"], line
    return argv[2:]


def test_make_remote_passes_methods_workers_budget_warm_pool_and_extra_flags() -> None:
    argv = launched_argv("METHODS=ASHA RS", "SEEDS=3", "N_WORKERS=3", "BUDGET=90",
                         "WARM_POOL=1", "ARGS=--inputs dataset=s3://bucket/cifar --epochs 3",
                         "ROLE=arn:aws:iam::123456789012:role/r", "S3_ROOT=s3://bucket/stbench",
                         "IMAGE=127.0.0.1:5000/stbench-trainer:latest")
    [spec] = study_from_args(argv).study.specs
    assert spec.method == ("ASHA", "RS") and spec.num_seeds == 3
    assert (spec.n_workers, spec.max_wallclock_time, spec.warm_pool) == (3, 90, True)
    assert spec.inputs == ("dataset=s3://bucket/cifar",) and spec.extra_args == {"epochs": "3"}
    assert spec.image == "127.0.0.1:5000/stbench-trainer:latest"
    assert (spec.benchmark, spec.experiment_tag) == ("mlp_digits", "mlp-digits")


def test_make_remote_keeps_the_benchmarks_own_budget_unless_given() -> None:
    [spec] = study_from_args(launched_argv()).study.specs
    assert spec.max_wallclock_time is None and spec.method == ("ASHA", "RS")


def test_a_leftover_method_variable_fails_with_one_line() -> None:
    for target in ("remote", "run"):
        result = make(target, "METHOD=RS")
        assert result.returncode == 2 and not result.stdout
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert 'pass METHODS="RS"' in result.stderr


def test_make_remote_tags_a_user_benchmark_path_by_its_name(tmp_path: Path) -> None:
    yaml = write_user_benchmark(tmp_path, name="my_bench")
    assert launched_argv(f"BENCH={yaml}")[-2:] == ["--experiment_tag", "my-bench"]
    # for real: the tag passes, and launch stops at the next thing missing here (AWS)
    result = make("remote", f"BENCH={yaml}", "ROLE=arn:aws:iam::123456789012:role/r",
                  "S3_ROOT=s3://bucket/stbench", "IMAGE=127.0.0.1:5000/stbench-trainer:latest",
                  dry_run=False)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("stbench:")]
    assert errors and "AWS" in errors[0] and "experiment_tag" not in errors[0], result.stderr


@pytest.mark.parametrize("bench, tag", [("mlp_digits", "mlp-digits"),
                                        ("bench/v2.yml", "v2"), ("a/my.bench.yaml", "my-bench")])
def test_make_remote_default_tags(bench: str, tag: str) -> None:
    assert launched_argv(f"BENCH={bench}")[-2:] == ["--experiment_tag", tag]
