"""Study files under launch/: many benchmarks x methods x seeds launched with one command."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

from stbench.model.errors import UserError, did_you_mean, read_user_text
from stbench.model.spec import ExperimentSpec

STUDY_KEYS = {"experiment_tag", "benchmarks", "methods", "method_args", "num_seeds",
              "start_seed", "overrides", "max_instances"}
HOW_NOT_WHAT = ("resume", "no_quota_check")


@dataclass(frozen=True)
class Study:
    """What one launch asks for: specs as the user gave them, and an optional instance cap."""

    specs: tuple[ExperimentSpec, ...]
    max_instances: int | None = None

    def definition(self) -> list[dict[str, Any]]:
        """What makes two launches the same study (resuming or checking quotas is how, not
        what)."""
        return [{k: v for k, v in spec.to_dict().items() if k not in HOW_NOT_WHAT}
                for spec in self.specs]


def load_study(path: Path, flags: dict[str, Any], max_instances: int | None = None) -> Study:
    """One spec per benchmark; `flags` (given on the command line) win over the file."""
    text = read_user_text(path, "study file")
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        line = err.problem_mark.line + 1 if err.problem_mark else 1
        raise UserError(f"{path}:{line}: malformed YAML: {err.problem}; fix the syntax") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a study file is a mapping with {sorted(STUDY_KEYS)}")
    for key in data:
        if key not in STUDY_KEYS:
            raise UserError(f"{path}: unknown key {str(key)!r}; valid: {sorted(STUDY_KEYS)}"
                            f"{did_you_mean(str(key), STUDY_KEYS)}")
    for key in ("experiment_tag", "benchmarks", "methods"):
        if not data.get(key):
            raise UserError(f"{path}: '{key}' is missing")
    _check_study_types(path, data)
    overrides = dict(data.get("overrides") or {})
    spec_fields = {f.name for f in fields(ExperimentSpec)}
    for key in overrides:
        if key not in spec_fields:
            raise UserError(f"{path}: override {str(key)!r} is not a `stbench run` flag"
                            f"{did_you_mean(str(key), spec_fields)}")
    specs = []
    for benchmark in data["benchmarks"]:
        values = {**overrides, "benchmark": benchmark, "method": tuple(data["methods"]),
                  "method_args": data.get("method_args", overrides.get("method_args", [])),
                  "experiment_tag": str(data["experiment_tag"]),
                  "num_seeds": data.get("num_seeds", 1), "start_seed": data.get("start_seed", 0)}
        try:
            spec = ExperimentSpec.from_dict(values)
        except UserError as err:
            raise UserError(f"{path}: {err}; fix the study file") from None
        specs.append(replace(spec, **flags))
    limit = max_instances if max_instances is not None else data.get("max_instances")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise UserError(f"{path}: max_instances must be a positive integer, got {limit!r}")
    return Study(tuple(specs), limit)


def _check_study_types(path: Path, data: dict[str, Any]) -> None:
    """The study's own keys (its overrides are checked as spec fields)."""
    for key in ("benchmarks", "methods", "method_args"):
        if key not in data:
            continue
        names = data[key]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise UserError(f"{path}: '{key}' must be a list of names, got {names!r}; write "
                            f"e.g. {key}: [{names if isinstance(names, str) else 'NAME'}]")
    for key in ("num_seeds", "start_seed"):
        value = data.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool):
            raise UserError(f"{path}: '{key}' must be an integer, got {value!r}; fix {key}")
    if not isinstance(data.get("overrides") or {}, dict):
        raise UserError(f"{path}: 'overrides' must be a mapping of `stbench run` flags to "
                        f"values, got {data['overrides']!r}")
