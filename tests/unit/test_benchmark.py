"""Benchmark YAML loading: built-ins, file:line errors in user files, `--key value` overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
from syne_tune.config_space import Domain

from stbench.model.benchmark import Benchmark
from stbench.model.catalog import builtin_names, load_benchmark, resolve_path
from stbench.model.errors import UserError

# Line numbers matter in the tests below: line 12 is `config_space:`, 13 is `epochs: 3`.
VALID = """\
name: tiny
script: train.py
metric: loss
mode: min
resource_attr: epoch
max_resource_attr: epochs
max_wallclock_time: 10
n_workers: 1
instance_type: ml.c5.large
description: a tiny benchmark
image: cpu
config_space:
  epochs: 3
  x: {type: uniform, lower: 0.0, upper: 1.0}
"""


def write_benchmark(folder: Path, text: str, script: bool = True) -> Path:
    """Write a user benchmark YAML (and, unless told not to, its script next to it)."""
    if script:
        (folder / "train.py").write_text("")
    path = folder / "user.yaml"
    path.write_text(text)
    return path


def load_error(tmp_path: Path, text: str, script: bool = True) -> str:
    """The UserError message for a user YAML file with the given text."""
    path = write_benchmark(tmp_path, text, script)
    with pytest.raises(UserError) as info:
        load_benchmark(str(path))
    message = str(info.value)
    assert "\n" not in message
    return message


def where(tmp_path: Path, line: int) -> str:
    return f"{tmp_path / 'user.yaml'}:{line}:"


# --- built-ins --------------------------------------------------------------------------------


def test_builtin_names() -> None:
    tables = ["fcnet_naval", "fcnet_parkinsons", "fcnet_protein", "fcnet_slice",
              *(f"hpobench_mlp_{d}" for d in ("australian", "blood_transfusion", "car",
                                              "credit_g", "kc1", "phoneme", "segment",
                                              "vehicle")),
              "nb201_cifar10", "nb201_cifar100", "nb201_imagenet"]
    assert builtin_names() == sorted(["gbm_breast_cancer", "hartmann6_curves", "mlp_digits",
                                      "mlp_friedman", "resnet_cifar10", "synthetic_curves",
                                      *tables])


@pytest.mark.parametrize(
    ("name", "metric", "max_resource", "tunable"),
    [
        ("mlp_digits", "val_error", 27, {"n_units", "learning_rate", "alpha", "batch_size"}),
        ("synthetic_curves", "loss", 9, {"x", "log_lr", "width"}),
    ],
)
def test_builtin_benchmark_loads(name: str, metric: str, max_resource: int,
                                 tunable: set[str]) -> None:
    bench = load_benchmark(name)
    assert bench.name == name
    assert (bench.metric, bench.mode, bench.resource_attr) == (metric, "min", "epoch")
    assert bench.max_resource_attr == "epochs"
    assert bench.max_resource == max_resource
    assert set(bench.tunable_names()) == tunable
    assert bench.script.is_file()
    assert bench.n_workers >= 1 and bench.max_wallclock_time > 0


def test_builtin_points_to_evaluate_lie_in_the_space() -> None:
    bench = load_benchmark("mlp_digits")
    assert bench.points_to_evaluate
    for point in bench.points_to_evaluate:
        for key, value in point.items():
            domain = bench.config_space[key]
            assert isinstance(domain, Domain) and domain.is_valid(value), (key, value)


def test_unknown_builtin_lists_valid_names() -> None:
    with pytest.raises(UserError, match="unknown benchmark 'nope'; valid ones: fcnet_naval, "
                                        ".*, gbm_breast_cancer, hartmann6_curves, "
                                        "hpobench_mlp_australian, .*, mlp_digits, mlp_friedman, "
                                        "nb201_cifar10, .*, resnet_cifar10, synthetic_curves"):
        load_benchmark("nope")


def test_missing_user_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        resolve_path(str(tmp_path / "absent.yaml"))


def test_valid_user_file_loads(tmp_path: Path) -> None:
    bench = load_benchmark(str(write_benchmark(tmp_path, VALID)))
    assert bench.name == "tiny" and bench.max_resource == 3
    assert bench.script == (tmp_path / "train.py").resolve()
    assert bench.tunable_names() == ["x"]


# --- errors in user files ---------------------------------------------------------------------


def test_tab_indentation_reports_its_line(tmp_path: Path) -> None:
    text = VALID.replace("n_workers: 1\n", "\tn_workers: 1\n")  # line 8
    message = load_error(tmp_path, text)
    assert message.startswith(where(tmp_path, 8))
    assert "malformed YAML" in message


def test_bad_indentation_reports_its_line(tmp_path: Path) -> None:
    text = VALID.replace("mode: min\n", "  mode: min\n")  # line 4
    message = load_error(tmp_path, text)
    assert message.startswith(where(tmp_path, 4))
    assert "malformed YAML" in message


def test_empty_file_is_reported(tmp_path: Path) -> None:
    assert "empty benchmark file" in load_error(tmp_path, "")


@pytest.mark.parametrize("name", ["name", "metric", "mode", "script", "config_space", "n_workers",
                                  "max_resource_attr"])
def test_missing_required_field_is_named(tmp_path: Path, name: str) -> None:
    if name == "config_space":
        text = VALID.split("config_space:")[0]
    else:
        text = "".join(line for line in VALID.splitlines(keepends=True)
                       if not line.startswith(f"{name}:"))
    assert f"missing required field '{name}'" in load_error(tmp_path, text)


def test_wrong_field_type_names_field_and_line(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID.replace("n_workers: 1", "n_workers: two"))
    assert message.startswith(where(tmp_path, 8))
    assert "field 'n_workers'" in message


def test_non_positive_wallclock_is_rejected(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID.replace("max_wallclock_time: 10", "max_wallclock_time: 0"))
    assert message.startswith(where(tmp_path, 7))
    assert "field 'max_wallclock_time': must be positive" in message


def test_bad_mode_is_rejected(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID.replace("mode: min", "mode: minimize"))
    assert message.startswith(where(tmp_path, 4)) and "field 'mode'" in message


def test_missing_script_is_reported(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID, script=False)
    assert message.startswith(where(tmp_path, 2)) and "train.py not found" in message


def test_unknown_top_level_field_is_rejected(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID.replace("image: cpu\n", "image: cpu\nworkers: 4\n"))
    assert message.startswith(where(tmp_path, 12))
    assert "field 'workers': unknown field; valid ones:" in message
    assert "n_workers" in message


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("{type: normal, lower: 0, upper: 1}", "'type' must be one of"),
        ("{type: uniform, lower: 1.0, upper: 0.5}", "uniform needs numbers 'lower' < 'upper'"),
        ("{type: randint, lower: 3, upper: 3}", "randint needs numbers 'lower' < 'upper'"),
        ("{type: uniform, lower: a, upper: 1}", "uniform needs numbers 'lower' < 'upper'"),
        ("{type: loguniform, lower: 0, upper: 1}", "loguniform needs 'lower' > 0"),
        ("{type: randint, lower: 0.5, upper: 4}", "randint needs integer bounds"),
        ("{type: choice, values: []}", "choice needs a non-empty list 'values'"),
        ("[1, 2]", "expected a fixed value or {type: ..., ...}"),
    ],
)
def test_bad_domain_names_field_and_line(tmp_path: Path, domain: str, expected: str) -> None:
    text = VALID + f"  y: {domain}\n"  # line 15
    message = load_error(tmp_path, text)
    assert message.startswith(f"{where(tmp_path, 15)} field 'y': ")
    assert expected in message


def test_max_resource_attr_must_be_a_fixed_positive_int(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID.replace("  epochs: 3", "  epochs: 2.5"))
    assert message.startswith(where(tmp_path, 6)) and "field 'max_resource_attr'" in message


def test_unknown_key_in_backend_block_is_rejected(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID + "sagemaker:\n  n_workers: 4\n  image: gpu\n")
    assert message.startswith(where(tmp_path, 17))
    assert "field 'sagemaker.image': can override only" in message


def test_points_to_evaluate_must_use_space_names(tmp_path: Path) -> None:
    message = load_error(tmp_path, VALID + "points_to_evaluate:\n  - {z: 1}\n")
    assert "field 'points_to_evaluate'" in message


def test_non_string_config_key_is_a_user_error(tmp_path: Path) -> None:
    load_error(tmp_path, VALID + "  1: 5\n")


# --- --key value overrides --------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits() -> Benchmark:
    return load_benchmark("mlp_digits")


@pytest.fixture(scope="module")
def curves() -> Benchmark:
    return load_benchmark("synthetic_curves")


def test_fixed_int_entry_is_overridden_as_int(digits: Benchmark) -> None:
    bench = digits.with_fixed_values({"epochs": "5"})
    assert bench.config_space["epochs"] == 5 and isinstance(bench.config_space["epochs"], int)
    assert bench.max_resource == 5
    assert digits.max_resource == 27  # the loaded benchmark itself is unchanged


def test_fixed_float_entry_is_overridden_as_float(curves: Benchmark) -> None:
    bench = curves.with_fixed_values({"epoch_duration": "0", "failure_probability": "0.25"})
    assert bench.config_space["epoch_duration"] == 0.0
    assert isinstance(bench.config_space["epoch_duration"], float)
    assert bench.config_space["failure_probability"] == 0.25


@pytest.mark.parametrize(
    ("key", "raw", "value"),
    [("learning_rate", "0.01", 0.01), ("n_units", "32", 32), ("batch_size", "64", 64),
     ("alpha", "1e-3", 1e-3)],
)
def test_domain_entry_is_fixed_inside_its_range(digits: Benchmark, key: str, raw: str,
                                                value: object) -> None:
    bench = digits.with_fixed_values({key: raw})
    assert bench.config_space[key] == value
    assert type(bench.config_space[key]) is type(value)
    assert key not in bench.tunable_names()  # no longer tuned


def test_randint_entry_is_fixed_as_int(curves: Benchmark) -> None:
    bench = curves.with_fixed_values({"width": "64", "x": "-3"})
    assert bench.config_space["width"] == 64 and bench.config_space["x"] == -3.0
    assert bench.tunable_names() == ["log_lr"]


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("learning_rate", "0.5", "allowed range is [0.0001, 0.3]"),
        ("n_units", "4", "allowed range is [8, 256]"),
        ("n_units", "12.5", "expected a int"),
        ("learning_rate", "fast", "expected a float"),
        ("learning_rate", "nan", "allowed range"),
        ("epochs", "many", "expected a int"),
        ("batch_size", "48", "choose one of [16, 32, 64, 128]"),
    ],
)
def test_bad_override_value_is_rejected(digits: Benchmark, key: str, raw: str,
                                        expected: str) -> None:
    with pytest.raises(UserError) as info:
        digits.with_fixed_values({key: raw})
    message = str(info.value)
    assert message.startswith(f"--{key} {raw!r} does not fit benchmark 'mlp_digits'")
    assert expected in message


def test_unknown_override_key_lists_valid_names(digits: Benchmark) -> None:
    with pytest.raises(UserError) as info:
        digits.with_fixed_values({"foo": "1"})
    assert str(info.value) == (
        "benchmark 'mlp_digits' has no argument '--foo'; valid ones: "
        "alpha, batch_size, epochs, learning_rate, n_units"
    )


@pytest.mark.parametrize("raw", ["0", "-2"])
def test_max_resource_override_must_stay_positive(digits: Benchmark, raw: str) -> None:
    with pytest.raises(UserError, match="epochs"):
        digits.with_fixed_values({"epochs": raw})


# --- purpose and optimum ----------------------------------------------------------------------


def test_comparison_benchmarks_know_their_optimum() -> None:
    hartmann = load_benchmark("hartmann6_curves")
    assert (hartmann.purpose, hartmann.optimum) == ("comparison", -3.32237)
    assert "analytic" in hartmann.optimum_source
    friedman = load_benchmark("mlp_friedman")
    assert friedman.purpose == "comparison" and "Bayes risk" in friedman.optimum_source
    assert load_benchmark("mlp_digits").purpose == "example"
    assert load_benchmark("synthetic_curves").purpose == "testing"


def test_user_file_without_purpose_is_an_example_without_optimum(tmp_path: Path) -> None:
    bench = load_benchmark(str(write_benchmark(tmp_path, VALID)))
    assert (bench.purpose, bench.optimum, bench.optimum_source) == ("example", None, "")


def test_purpose_and_optimum_load_from_a_user_file(tmp_path: Path) -> None:
    text = VALID + "purpose: comparison\noptimum: 0\noptimum_source: exact, x = 0.3\n"
    bench = load_benchmark(str(write_benchmark(tmp_path, text)))
    assert (bench.purpose, bench.optimum, bench.optimum_source) == (
        "comparison", 0.0, "exact, x = 0.3")


@pytest.mark.parametrize(
    ("extra", "line", "expected"),
    [
        ("purpose: compare\n", 15, "field 'purpose': must be one of comparison, example, testing"),
        ("optimum: low\noptimum_source: guess\n", 15, "field 'optimum': expected float"),
        ("optimum: .nan\noptimum_source: guess\n", 15, "field 'optimum': must be a finite number"),
        ("optimum: 0.5\n", 15, "field 'optimum': needs 'optimum_source'"),
        ("optimum_source: exact\n", 15, "field 'optimum_source': describes an 'optimum' that"),
    ],
)
def test_bad_purpose_or_optimum_names_field_and_line(tmp_path: Path, extra: str, line: int,
                                                     expected: str) -> None:
    message = load_error(tmp_path, VALID + extra)
    assert message.startswith(where(tmp_path, line))
    assert expected in message
