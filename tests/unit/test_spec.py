"""ExperimentSpec: paired seeds, defaults taken from the benchmark, validation messages."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from stbench.model.benchmark import Benchmark
from stbench.model.benchmark_yaml import parse_benchmark_file
from stbench.model.catalog import load_benchmark
from stbench.model.errors import UserError
from stbench.model.spec import ExperimentSpec

BENCHMARK_YAML = """\
name: tiny
script: train.py
metric: loss
mode: min
resource_attr: epoch
max_resource_attr: epochs
config_space:
  x: {type: uniform, lower: 0.0, upper: 1.0}
  epochs: 3
max_wallclock_time: 10
n_workers: 2
instance_type: ml.c5.large
sagemaker:
  n_workers: 8
  max_wallclock_time: 600
  instance_type: ml.g5.xlarge
"""


def write_benchmark(folder: Path, text: str = BENCHMARK_YAML) -> Path:
    """Write a benchmark YAML with its (empty) training script next to it."""
    (folder / "train.py").write_text("")
    path = folder / "tiny.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def tiny(tmp_path: Path) -> Benchmark:
    return parse_benchmark_file(write_benchmark(tmp_path))


def make_spec(**changes: object) -> ExperimentSpec:
    """A spec for the built-in synthetic benchmark with the given fields changed."""
    return replace(ExperimentSpec(benchmark="synthetic_curves", method=("RS",)), **changes)


# --- paired scheduler seeds -------------------------------------------------------------------


def test_scheduler_seed_is_the_same_for_every_method() -> None:
    """Methods compared on seed s see the same scheduler seed: the comparison is paired."""
    base = make_spec(random_seed=1234, num_seeds=3)
    others = [replace(base, method=(m,)) for m in ("ASHA", "BO", "TPE")]
    for seed in base.seeds:
        assert {s.scheduler_seed(seed) for s in [base, *others]} == {base.scheduler_seed(seed)}


def test_scheduler_seed_differs_across_seeds() -> None:
    spec = make_spec(random_seed=1234, num_seeds=20)
    seeds = [spec.scheduler_seed(s) for s in spec.seeds]
    assert len(set(seeds)) == len(seeds)
    assert all(0 <= s < 2**31 - 1 for s in seeds)


def test_scheduler_seed_changes_with_random_seed() -> None:
    a, b = make_spec(random_seed=1), make_spec(random_seed=2)
    assert a.scheduler_seed(0) != b.scheduler_seed(0)
    assert a.scheduler_seed(0) == make_spec(random_seed=1).scheduler_seed(0)  # deterministic


def test_scheduler_seed_needs_a_resolved_spec() -> None:
    with pytest.raises(ValueError, match="resolve"):
        make_spec().scheduler_seed(0)


# --- resolved(): defaults from the benchmark and its backend block ----------------------------


def test_resolved_takes_defaults_from_builtin_benchmark() -> None:
    bench = load_benchmark("synthetic_curves")
    spec = make_spec().resolved(bench)
    assert spec.n_workers == bench.n_workers == 2
    assert spec.max_wallclock_time == bench.max_wallclock_time == 30
    assert spec.instance_type == bench.instance_type == "ml.c5.xlarge"


def test_resolved_uses_top_level_values_for_local_backend(tiny: Benchmark) -> None:
    spec = make_spec(backend="local").resolved(tiny)
    assert (spec.n_workers, spec.max_wallclock_time, spec.instance_type) == (
        2, 10.0, "ml.c5.large"
    )


def test_resolved_uses_sagemaker_block_for_sagemaker_backend(tiny: Benchmark) -> None:
    spec = make_spec(backend="sagemaker").resolved(tiny)
    assert (spec.n_workers, spec.max_wallclock_time, spec.instance_type) == (
        8, 600.0, "ml.g5.xlarge"
    )


def test_partial_backend_block_keeps_other_defaults(tmp_path: Path) -> None:
    text = BENCHMARK_YAML.replace("  max_wallclock_time: 600\n  instance_type: ml.g5.xlarge\n", "")
    bench = parse_benchmark_file(write_benchmark(tmp_path, text))
    spec = make_spec(backend="sagemaker").resolved(bench)
    assert (spec.n_workers, spec.max_wallclock_time, spec.instance_type) == (
        8, 10.0, "ml.c5.large"
    )


def test_explicit_flags_win_over_benchmark_defaults(tiny: Benchmark) -> None:
    spec = make_spec(
        backend="sagemaker", n_workers=3, max_wallclock_time=42.0, instance_type="ml.m5.large"
    ).resolved(tiny)
    assert (spec.n_workers, spec.max_wallclock_time, spec.instance_type) == (
        3, 42.0, "ml.m5.large"
    )


def test_missing_random_seed_is_drawn_once_then_fixed(tiny: Benchmark) -> None:
    """The drawn seed is kept by later resolutions, so a run's scheduler seeds never change."""
    first = make_spec().resolved(tiny)
    assert isinstance(first.random_seed, int)
    again = first.resolved(tiny)
    assert again.random_seed == first.random_seed
    assert again.scheduler_seed(0) == first.scheduler_seed(0)


def test_given_random_seed_is_kept(tiny: Benchmark) -> None:
    assert make_spec(random_seed=7).resolved(tiny).random_seed == 7
    assert make_spec(random_seed=0).resolved(tiny).random_seed == 0


# --- serialization ----------------------------------------------------------------------------


def test_to_dict_from_dict_round_trip_through_json() -> None:
    spec = make_spec(
        method=("RS", "ASHA"), experiment_tag="t-1", num_seeds=3, start_seed=2, n_workers=4,
        max_wallclock_time=12.5, random_seed=99, backend="sagemaker", resume=True,
        extra_args={"epochs": "5"},
    )
    data = json.loads(json.dumps(spec.to_dict()))
    assert data["method"] == ["RS", "ASHA"]
    back = ExperimentSpec.from_dict(data)
    assert back == spec
    assert back.method == ("RS", "ASHA")


def test_from_dict_rejects_unknown_fields() -> None:
    data = {**make_spec().to_dict(), "n_wokers": 3}
    with pytest.raises(UserError, match="n_wokers"):
        ExperimentSpec.from_dict(data)


# --- validate() -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"num_seeds": 0}, "--num_seeds must be at least 1, got 0"),
        ({"n_workers": 0}, "--n_workers must be positive, got 0"),
        ({"max_wallclock_time": -1.0}, "--max_wallclock_time must be positive, got -1.0"),
        ({"max_num_trials": 0}, "--max_num_trials must be positive, got 0"),
        ({"start_seed": -1}, "--start_seed must be non-negative, got -1"),
        ({"max_failures": 0}, "--max_failures must be at least 1, got 0"),
        ({"resume": True}, "--resume needs the --experiment_tag"),
        ({"experiment_tag": "a/b"}, "--experiment_tag 'a/b' may use only"),
        ({"method": ()}, "no method given"),
        ({"backend": "cloud"}, "unknown backend 'cloud'"),
        ({"backend": "simulated", "jobs": 0}, "--jobs must be at least 1, got 0"),
        ({"backend": "local", "jobs": 2}, "--jobs 2 is for --backend simulated"),
        ({"backend": "sagemaker", "jobs": 4}, "leave --jobs out"),
    ],
)
def test_validate_names_the_flag_to_fix(changes: dict[str, object], expected: str) -> None:
    with pytest.raises(UserError) as info:
        make_spec(**changes).validate()
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_validate_accepts_a_sensible_spec() -> None:
    make_spec(experiment_tag="exp-1", resume=True, n_workers=1, max_wallclock_time=0.5).validate()


def test_jobs_default_to_the_cpus_when_simulated_and_one_otherwise() -> None:
    """A simulated study uses every CPU unasked; real trials never run two experiments at
    once, whose trials would compete for the same CPUs."""
    benchmark = load_benchmark("synthetic_curves")
    simulated = make_spec(backend="simulated").resolved(benchmark)
    assert simulated.jobs == len(os.sched_getaffinity(0))
    assert make_spec(backend="simulated", jobs=1).resolved(benchmark).jobs == 1
    assert make_spec(backend="local").resolved(benchmark).jobs == 1
    make_spec(backend="local", jobs=1).validate()  # one at a time is what --backend local does
