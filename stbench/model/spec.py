"""The experiment spec: one typed dataclass whose fields are the `stbench run` flags.

The same object travels from CLI flags to an orchestrator job's SageMaker hyperparameters
and back (`to_hyperparameters`, `from_hyperparameters`), so the field list is the single
source of truth for both.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import typing
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from stbench.model.backend_names import LOCAL, SIMULATED, SPEC_BACKENDS
from stbench.model.benchmark import Benchmark
from stbench.model.errors import UserError
from stbench.model.images import trainer_image_for
from stbench.model.method_args import MethodArgs, variants_of
from stbench.model.naming import MAX_HASHED_SEED

MAX_TAG = 128  # a tag names folders, S3 prefixes and job tag values (SageMaker: 256 at most)


def _flag(help_text: str, **argparse_options: Any) -> dict[str, Any]:
    return {"help": help_text, "argparse": argparse_options}


@dataclass(frozen=True)
class ExperimentSpec:
    """What to run: one benchmark, one or more methods, a range of seeds, and how.

    Optional fields left as None take the benchmark's defaults in `resolved()`.
    """

    benchmark: str = field(
        default="",
        metadata=_flag("built-in benchmark name or path to a YAML file (with --from_study: "
                       "the study's, unless it holds several)"),
    )
    method: tuple[str, ...] = field(
        default=(), metadata=_flag("one or more HPO methods (see `stbench methods`)", nargs="+")
    )
    method_args: tuple[MethodArgs, ...] = field(
        default=(),
        metadata=_flag("method settings, NAME:key=value[,key=value...] (see `stbench methods "
                       "--details`); several entries for one method run each as a variant, "
                       "labelled NAME(key=value,...)", nargs="+", metavar="NAME:KEY=VALUE,...",
                       type=MethodArgs.parse),
    )
    experiment_tag: str = field(default="", metadata=_flag("name grouping a study's results"))
    num_seeds: int = field(default=1, metadata=_flag("how many seeds, from start_seed on"))
    start_seed: int = field(default=0, metadata=_flag("first seed"))
    n_workers: int | None = field(default=None, metadata=_flag("trials run in parallel"))
    max_wallclock_time: float | None = field(
        default=None, metadata=_flag("seconds each experiment may run")
    )
    max_num_trials: int | None = field(
        default=None, metadata=_flag("stop starting trials after this many (optional)")
    )
    max_failures: int = field(default=3, metadata=_flag("failed trials that end an experiment"))
    max_cost: float | None = field(
        default=None,
        metadata=_flag("USD each experiment may spend on trials; then running trials stop and "
                       "no new one starts (local, docker and simulated trials are priced at the "
                       "benchmark's SageMaker instance type, as an estimate)"),
    )
    warm_pool: bool = field(
        default=False,
        metadata=_flag("keep instances warm between trials (SageMaker: needs a warm-pool quota)",
                       nargs="?", const=True),
    )
    random_seed: int | None = field(
        default=None, metadata=_flag("master seed; scheduler seeds derive from it and the seed")
    )
    backend: str = field(
        default=LOCAL,
        metadata=_flag("where trials run; simulated: replay learning curves in simulated time",
                       choices=SPEC_BACKENDS),
    )
    from_study: str | None = field(
        default=None,
        metadata=_flag("--backend simulated: replay the curves this earlier study (its "
                       "--experiment_tag) recorded; its benchmark, workers and budget are the "
                       "defaults"),
    )
    simulated_start_seconds: float | None = field(
        default=None,
        metadata=_flag("--backend simulated: seconds from a trial's start to its script's "
                       "start (default: what --from_study recorded, else 0)"),
    )
    blackbox: str | None = field(
        default=None,
        metadata=_flag("--backend simulated: replay Syne Tune blackbox-repository files, "
                       "NAME[:TASK] (a folder, or a name found in ~/.blackbox-repository or "
                       "the Hugging Face cache; never downloaded); with --benchmark, its metric "
                       "and mode", metavar="NAME[:TASK]"),
    )
    jobs: int | None = field(
        default=None,
        metadata=_flag("--backend simulated: experiments run at once, each in its own process "
                       "(default: the number of CPUs)"),
    )
    instance_type: str | None = field(default=None, metadata=_flag("instance type for trials"))
    image: str | None = field(
        default=None,
        metadata=_flag("trainer image for container back-ends (default: the benchmark's variant)"),
    )
    role: str | None = field(
        default=None, metadata=_flag("SageMaker execution role ARN (--backend sagemaker)")
    )
    s3_root: str | None = field(
        default=None,
        metadata=_flag("s3://bucket/prefix for checkpoints and outputs (--backend sagemaker)"),
    )
    region: str | None = field(default=None, metadata=_flag("AWS region (--backend sagemaker)"))
    inputs: tuple[str, ...] = field(
        default=(),
        metadata=_flag("input channels NAME=SOURCE (s3:// URI or local folder), added to the "
                       "benchmark's inputs; trials read /opt/ml/input/data/NAME", nargs="+"),
    )
    no_quota_check: bool = field(
        default=False,
        metadata=_flag("skip the check of SageMaker's Service Quotas (--backend sagemaker)"),
    )
    max_capacity_wait: float = field(
        default=3600.0,
        metadata=_flag("seconds to keep retrying a trial (or launch) refused for capacity "
                       "(ResourceLimitExceeded) before the experiment fails (--backend "
                       "sagemaker, launch)"),
    )
    results_root: str = field(default="results", metadata=_flag("folder holding all results"))
    resume: bool = field(default=False, metadata=_flag("continue an interrupted experiment"))
    extra_args: dict[str, str] = field(
        default_factory=dict, metadata=_flag("benchmark arguments given as --key value")
    )

    def validate(self) -> None:
        """Checks that need no benchmark file; raises UserError naming the fix."""
        if not self.method:
            raise UserError("no method given; pass --method NAME (see `stbench methods`)")
        self.variants()
        if not self.benchmark and not self.blackbox:
            raise UserError("no benchmark given; pass --benchmark NAME (see `stbench "
                            "benchmarks`), or --from_study TAG or --blackbox NAME with "
                            "--backend simulated")
        if self.num_seeds < 1:
            raise UserError(f"--num_seeds must be at least 1, got {self.num_seeds}")
        if self.start_seed < 0:
            raise UserError(f"--start_seed must be non-negative, got {self.start_seed}")
        last = self.start_seed + self.num_seeds - 1
        if last >= MAX_HASHED_SEED:  # also keeps a typo from planning a billion experiments
            raise UserError(
                f"seeds {self.start_seed}..{last} go beyond {MAX_HASHED_SEED - 1} (the last "
                "seed `stbench status` can find): lower --num_seeds or --start_seed")
        if self.random_seed is not None and self.random_seed < 0:
            raise UserError(f"--random_seed must be a non-negative integer, got "
                            f"{self.random_seed}: pass one, or leave it out to draw one")
        for name in ("max_wallclock_time", "max_capacity_wait"):
            seconds = getattr(self, name)
            if seconds is not None and not math.isfinite(seconds):
                raise UserError(f"--{name} must be a finite number of seconds, got {seconds}")
        if self.max_cost is not None and not math.isfinite(self.max_cost):
            raise UserError(f"--max_cost must be a finite number of US dollars, got "
                            f"{self.max_cost}")
        for name in ("n_workers", "max_wallclock_time", "max_num_trials", "max_capacity_wait",
                     "max_cost"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise UserError(f"--{name} must be positive, got {value}")
        if self.max_failures < 1:
            raise UserError(f"--max_failures must be at least 1, got {self.max_failures}")
        if self.backend not in SPEC_BACKENDS:
            raise UserError(
                f"unknown backend '{self.backend}'; valid ones: {', '.join(SPEC_BACKENDS)}")
        self._validate_simulation()
        if self.resume and not self.experiment_tag:
            raise UserError("--resume needs the --experiment_tag of the run to continue")
        if len(self.experiment_tag) > MAX_TAG:
            raise UserError(f"--experiment_tag is {len(self.experiment_tag)} characters long; "
                            f"use at most {MAX_TAG}")
        if self.experiment_tag and not _is_safe_name(self.experiment_tag):
            raise UserError(
                f"--experiment_tag '{self.experiment_tag}' may use only letters, digits and '-'"
            )

    def _validate_simulation(self) -> None:
        simulated_only = {"from_study": self.from_study, "blackbox": self.blackbox,
                          "simulated_start_seconds": self.simulated_start_seconds}
        for name, value in simulated_only.items():
            if value is not None and self.backend != SIMULATED:
                raise UserError(f"--{name} is for --backend simulated (got --backend "
                                f"{self.backend})")
        if self.from_study is not None and not (self.from_study
                                                and _is_safe_name(self.from_study)):
            raise UserError(f"--from_study '{self.from_study}' is not a study tag (letters, "
                            "digits and '-')")
        if self.simulated_start_seconds is not None and self.simulated_start_seconds < 0:
            raise UserError("--simulated_start_seconds must be non-negative, got "
                            f"{self.simulated_start_seconds}")
        if self.jobs is not None and self.jobs < 1:
            raise UserError(f"--jobs must be at least 1, got {self.jobs}")
        if self.jobs is not None and self.jobs > 1 and self.backend != SIMULATED:
            raise UserError(
                f"--jobs {self.jobs} is for --backend simulated: real trials of experiments "
                f"run at once (--backend {self.backend}) would compete for the same workers "
                "and CPUs and distort each other's times; leave --jobs out (`stbench launch` "
                "runs a study's experiments at once on SageMaker)")

    def with_trainer_image(self, variant: str) -> ExperimentSpec:
        """One --image names the trainer of every variant (a benchmark's `image: cpu|gpu`):
        the spec of a `gpu` benchmark gets the `-gpu` sibling of a stbench-trainer image, for
        every back-end and for `launch`, before any check (a custom image is used as given)."""
        if not self.image:
            return self
        return replace(self, image=trainer_image_for(self.image, variant))

    def resolved(self, benchmark: Benchmark) -> ExperimentSpec:
        """Fill unset fields from the benchmark (for this backend) and draw a random seed."""
        defaults = benchmark.for_backend(self.backend)
        return replace(
            self,
            n_workers=self.n_workers or defaults.n_workers,
            max_wallclock_time=self.max_wallclock_time or defaults.max_wallclock_time,
            instance_type=self.instance_type or defaults.instance_type,
            jobs=self.jobs or (available_cpus() if self.backend == SIMULATED else 1),
            random_seed=(
                self.random_seed if self.random_seed is not None else secrets.randbelow(2**31)
            ),
        )

    def variants(self) -> tuple[MethodArgs, ...]:
        """The methods that run, each with its settings: one experiment per variant and seed."""
        return variants_of(self.method, self.method_args)

    @property
    def seeds(self) -> range:
        return range(self.start_seed, self.start_seed + self.num_seeds)

    def scheduler_seed(self, seed: int) -> int:
        """Paired seeds: depends on (random_seed, seed) only, the same for every method."""
        if self.random_seed is None:
            raise ValueError("resolve the spec before deriving scheduler seeds")
        state = np.random.SeedSequence([self.random_seed, seed]).generate_state(1)
        return int(state[0] % (2**31 - 1))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["method"] = list(self.method)
        data["method_args"] = [args.text for args in self.method_args]
        return data

    def to_hyperparameters(self) -> dict[str, str]:
        """SageMaker hyperparameters (string values): how a spec reaches a remote orchestrator."""
        return {key: json.dumps(value) for key, value in self.to_dict().items()}

    @classmethod
    def from_hyperparameters(cls, values: dict[str, str]) -> ExperimentSpec:
        decoded = {}
        for key, value in values.items():
            try:
                decoded[key] = json.loads(value)
            except (TypeError, json.JSONDecodeError):
                raise UserError(
                    f"hyperparameter {key}={value!r} is not JSON; launch with `stbench launch`"
                ) from None
        return cls.from_dict(decoded)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentSpec:
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise UserError(f"unknown experiment fields {sorted(unknown)}")
        missing = {"benchmark", "method"} - set(data)
        if missing:
            raise UserError(f"experiment fields {sorted(missing)} are missing")
        if isinstance(data.get("method_args"), (list, tuple)):  # parsed flags, or their text
            data = {**data, "method_args": [a.text if isinstance(a, MethodArgs) else a
                                            for a in data["method_args"]]}
        hints = typing.get_type_hints(cls)
        for name, value in data.items():
            expected = _type_problem(value, hints[name])
            if expected:
                raise UserError(f"{name} must be {expected}, got {value!r}")
        values = dict(data)
        values["method"] = tuple(values.get("method", ()))
        values["method_args"] = tuple(MethodArgs.parse(text)
                                      for text in values.get("method_args", ()))
        values["inputs"] = tuple(values.get("inputs", ()))
        values["extra_args"] = dict(values.get("extra_args") or {})
        return cls(**values)


_KIND_WORDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
               tuple: "a list of strings", dict: "a mapping of strings"}


def _type_problem(value: Any, annotation: Any) -> str:
    """What a field's value must be, in words, when `value` does not fit its annotation (a
    study file's overrides or a job's hyperparameters are not checked by argparse)."""
    options = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (tuple, dict):
        kind, allowed = origin, (list, tuple) if origin is tuple else (dict,)
    else:
        kind = options[0] if options else annotation
        allowed = (int, float) if kind is float else (kind,)
    if value is None and type(None) in typing.get_args(annotation):
        return ""
    fits = isinstance(value, allowed) and not (isinstance(value, bool) and kind is not bool)
    if fits and origin is tuple:
        fits = all(isinstance(item, str) for item in value)
    if fits and origin is dict:
        fits = all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    return "" if fits else _KIND_WORDS[kind]


def available_cpus() -> int:
    """The CPUs this process may run on (a container's or taskset's share, not the host's)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _is_safe_name(name: str) -> bool:
    return all(c.isalnum() or c == "-" for c in name) and name[0].isalnum()
