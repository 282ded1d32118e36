"""`stbench run --dry_run`'s plan, and the cost estimate `stbench run --backend sagemaker`
prints before its first job: what a planned study would run, and on which instances."""

from __future__ import annotations

from stbench.model.backend_names import CONTAINER_BACKENDS, SAGEMAKER
from stbench.model.cost_estimate import CostEstimate, estimate, experiment_instances
from stbench.model.naming import experiment_base, trial_job_prefix
from stbench.model.prices import load_price_table
from stbench.orchestration.backend_factory import KEEP_ALIVE_SECONDS
from stbench.orchestration.study_runner import PlannedExperiment, StudyPlan


def pending(plan: StudyPlan) -> list[PlannedExperiment]:
    """The experiments a run would start: all but those an earlier run completed."""
    return [planned for planned in plan.experiments
            if not (planned.previous and planned.previous.metadata.get("status") == "completed")]


def run_estimate(plan: StudyPlan) -> CostEstimate:
    """SageMaker trials of the experiments still to run, one after another: n_workers
    instances for each one's budget, and its pools' keep-alive with --warm_pool."""
    return estimate([experiment_instances(plan.spec, KEEP_ALIVE_SECONDS)
                     for _ in pending(plan)], load_price_table())


def print_run_plan(plan: StudyPlan) -> None:
    """Every experiment with its results folder and trials; for SageMaker the quotas and the
    estimate. All checks have passed and nothing was written."""
    spec, to_run = plan.spec, pending(plan)
    for planned in plan.experiments:
        label = f"  {planned.method} seed {planned.seed}"
        if planned not in to_run:
            print(f"{label}: completed before ({planned.folder}), skipped")
            continue
        where = f"{label}: results in {planned.folder}"
        if spec.backend in CONTAINER_BACKENDS:
            base = experiment_base(spec.experiment_tag, plan.benchmark.name, planned.method,
                                   planned.seed)
            kind = f" on {spec.instance_type}" if spec.backend == SAGEMAKER else ""
            print(f"{where}; trial jobs {trial_job_prefix(base)}…{kind}, "
                  f"{spec.n_workers} at once")
        else:
            print(f"{where}; {spec.n_workers} {spec.backend} trials at once")
    if spec.backend == SAGEMAKER and to_run:
        import boto3

        from stbench.backends.jobs.sagemaker_instances import InstanceDemand
        from stbench.launch.remote import quota_lines

        workers = int(spec.n_workers or 1)
        demand = InstanceDemand(str(spec.instance_type), workers,
                                workers if spec.warm_pool else 0, "", "")
        region = plan.backend_setup.region
        print(f"SageMaker quotas this run needs at once in {region} (experiments run one "
              "after another):")
        for line in quota_lines(boto3.session.Session(region_name=region), region, [demand],
                                not spec.no_quota_check):
            print(line)
        print(run_estimate(plan).line())
    print(f"nothing was created ({len(to_run)} experiments would run); to run: the same "
          "command without --dry_run")
