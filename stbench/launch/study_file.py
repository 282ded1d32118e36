"""Study files under launch/: many benchmarks x methods x seeds launched with one command."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

from stbench.model.errors import UserError
from stbench.model.spec import ExperimentSpec

STUDY_KEYS = {"experiment_tag", "benchmarks", "methods", "num_seeds", "start_seed", "overrides",
              "max_instances"}
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
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.MarkedYAMLError as err:
        line = err.problem_mark.line + 1 if err.problem_mark else 1
        raise UserError(f"{path}:{line}: malformed YAML: {err.problem}; fix the syntax") from None
    except OSError as err:
        raise UserError(f"cannot read study file {path}: {err.strerror}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a study file is a mapping with {sorted(STUDY_KEYS)}")
    unknown = set(data) - STUDY_KEYS
    if unknown:
        raise UserError(f"{path}: unknown keys {sorted(unknown)}; valid: {sorted(STUDY_KEYS)}")
    for key in ("experiment_tag", "benchmarks", "methods"):
        if not data.get(key):
            raise UserError(f"{path}: '{key}' is missing")
    overrides = dict(data.get("overrides") or {})
    spec_fields = {f.name for f in fields(ExperimentSpec)}
    bad = set(overrides) - spec_fields
    if bad:
        raise UserError(f"{path}: overrides {sorted(bad)} are not `stbench run` flags")
    specs = []
    for benchmark in data["benchmarks"]:
        values = {**overrides, "benchmark": str(benchmark), "method": tuple(data["methods"]),
                  "experiment_tag": str(data["experiment_tag"]),
                  "num_seeds": int(data.get("num_seeds", 1)),
                  "start_seed": int(data.get("start_seed", 0))}
        spec = ExperimentSpec.from_dict(values)
        specs.append(replace(spec, **flags))
    limit = max_instances if max_instances is not None else data.get("max_instances")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise UserError(f"{path}: max_instances must be a positive integer, got {limit!r}")
    return Study(tuple(specs), limit)
