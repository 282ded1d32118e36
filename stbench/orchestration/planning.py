"""The planning step `stbench run` and `stbench launch` share: every check of a spec against
its benchmark, made once, before anything is written or created.

`plan_run` validates the spec, loads the benchmark with the spec's arguments, checks the
methods, the price a cost budget needs, the input channels and the trials' job requests, and
packs a user benchmark's folder. Its `RunPlan` carries what it computed (channels, packed
code, pricing), so no later step reads `--inputs` or packs the folder again. `plan_study`
(study_runner.py) adds the back-end's setup and the experiments' folders; `plan_launch`
(launch/remote.py) the orchestrator jobs.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from stbench.methods.registry import MethodContext, check_variant, get_method
from stbench.model.benchmark import Benchmark
from stbench.model.errors import UserError
from stbench.model.naming import experiment_base
from stbench.model.prices import load_prices
from stbench.model.spec import ExperimentSpec
from stbench.model.trial_pricing import TrialPricing
from stbench.orchestration.backend_factory import (
    check_tabulated_run,
    check_trial_requests,
    load_run_benchmark,
    with_backend_defaults,
)
from stbench.orchestration.trial_inputs import TrialFiles

SPEC_FLAGS = tuple(f.name for f in fields(ExperimentSpec))  # a misspelled one lands in extra_args


@dataclass(frozen=True)
class RunPlan:
    spec: ExperimentSpec  # validated, with its back-end's defaults and the benchmark's image
    benchmark: Benchmark  # with the spec's extra args applied
    pricing: TrialPricing  # what a trial costs
    files: TrialFiles  # the input channels and the packed folder of a user benchmark


def plan_run(spec: ExperimentSpec) -> RunPlan:
    """Everything about a spec that can be checked without its back-end's service; writes
    nothing. Bad input is a one-line UserError naming the fix."""
    spec = with_backend_defaults(spec)
    spec.validate()
    for name in spec.method:
        get_method(name)
    spec = replace(spec, method_args=tuple(check_variant(a) for a in spec.method_args))
    benchmark = load_run_benchmark(spec).with_fixed_values(spec.extra_args, SPEC_FLAGS)
    check_tabulated_run(spec, benchmark)
    check_variants(spec, benchmark)
    spec = spec.with_trainer_image(benchmark.image)
    pricing = TrialPricing.for_run(spec.backend, spec.instance_type, benchmark, load_prices())
    pricing.require_price(spec.max_cost)
    files = TrialFiles.plan(spec, benchmark)
    check_trial_requests(spec, benchmark)
    return RunPlan(spec, benchmark, pricing, files)


def check_variants(spec: ExperimentSpec, benchmark: Benchmark) -> None:
    """Each variant once (canonical labels: `ASHA:grace_period=1` is `ASHA`), and each builds
    a scheduler for this benchmark: Syne Tune's own checks (a grace period beyond the
    benchmark's resource) fail here as one line, not in the first experiment."""
    bases: dict[str, str] = {}
    for variant in spec.variants():
        base = experiment_base(spec.experiment_tag or "tag", benchmark.name, variant.label, 0)
        if base in bases:  # job names keep letters, digits and '-' only
            raise UserError(f"methods {bases[base]} and {variant.label} would share SageMaker "
                            "job names; change one's --method_args")
        bases[base] = variant.label
        try:
            get_method(variant.method).make_scheduler(
                MethodContext.for_benchmark(benchmark, 0), variant)
        except (AssertionError, ValueError) as err:
            raise UserError(f"{variant.label} does not fit benchmark {benchmark.name} "
                            f"({benchmark.resource_attr} up to {benchmark.max_resource}): "
                            f"{err}; change its --method_args") from None
