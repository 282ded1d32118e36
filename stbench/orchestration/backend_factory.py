"""Choose and build the trial backend an experiment's spec asks for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from syne_tune.backend.trial_backend import TrialBackend

from stbench.model.backend_names import CONTAINER_BACKENDS, DOCKER, LOCAL, SAGEMAKER, SIMULATED
from stbench.model.benchmark import Benchmark
from stbench.model.catalog import load_benchmark
from stbench.model.images import LOCAL_TRAINER
from stbench.model.method_args import tag_value
from stbench.model.naming import TAG_ENV, experiment_base
from stbench.model.spec import ExperimentSpec
from stbench.model.trial_pricing import TrialPricing
from stbench.orchestration.trial_inputs import TrialFiles

KEEP_ALIVE_SECONDS = 600


def trainer_image(spec: ExperimentSpec, benchmark: Benchmark) -> str:
    return spec.image or LOCAL_TRAINER[benchmark.image]


def with_backend_defaults(spec: ExperimentSpec) -> ExperimentSpec:
    """The spec with what its back-end fills in where the command line gives nothing: a
    simulated `--from_study` takes the recorded study's benchmark, workers and budget."""
    if spec.backend == SIMULATED and spec.from_study:
        from stbench.backends.simulated.sources import with_study_defaults

        return with_study_defaults(spec)
    return spec


def load_run_benchmark(spec: ExperimentSpec) -> Benchmark:
    """The spec's benchmark; Syne Tune blackbox files (`--blackbox`, or a YAML's `blackbox:`)
    give it their config space and resource."""
    benchmark = load_benchmark(spec.benchmark) if spec.benchmark else None
    blackbox = spec.blackbox or (benchmark.blackbox if benchmark else "")
    if not blackbox:
        assert benchmark is not None  # spec.validate: a benchmark or a blackbox
        return benchmark
    from stbench.backends.simulated.blackbox_files import blackbox_benchmark

    return blackbox_benchmark(blackbox, benchmark)


def check_tabulated_run(spec: ExperimentSpec, benchmark: Benchmark) -> None:
    """A tabulated benchmark runs simulated only, final values with full-fidelity methods."""
    if benchmark.tabulated:
        from stbench.backends.simulated.tabulated import check_tabulated
        from stbench.methods.registry import METHODS, get_method

        multi = [name for name in spec.method if get_method(name).multi_fidelity]
        full = [method.name for method in METHODS.values() if not method.multi_fidelity]
        check_tabulated(spec, benchmark, multi, full)


def check_trial_requests(spec: ExperimentSpec, benchmark: Benchmark) -> None:
    """Container trials are CreateTrainingJob requests: their hyperparameters must fit."""
    if spec.backend in CONTAINER_BACKENDS:
        from stbench.backends.jobs.job_requests import check_trial_hyperparameters

        check_trial_hyperparameters(benchmark)


def check_backend(spec: ExperimentSpec, benchmark: Benchmark) -> Any:
    """What the back-end's service needs, checked before any experiment folder is written.

    Returns what the checks confirmed (the SageMaker setup), so experiments reuse it."""
    if spec.backend == SIMULATED:  # the curves, and the surrogate fit once per study
        from stbench.backends.simulated.backend import prepare_simulation

        return prepare_simulation(benchmark, spec.from_study, Path(spec.results_root),
                                  spec.simulated_start_seconds)
    if spec.backend == SAGEMAKER:
        import boto3

        from stbench.backends.jobs.sagemaker_checks import check_sagemaker_setup
        from stbench.backends.jobs.sagemaker_instances import InstanceDemand, check_quotas

        defaults = benchmark.for_backend(SAGEMAKER)
        instance_type = spec.instance_type or defaults.instance_type
        session = boto3.session.Session(region_name=spec.region)
        setup = check_sagemaker_setup(session, spec.role, spec.s3_root, spec.image, instance_type)
        if not spec.no_quota_check:  # experiments run one after another: n_workers at once
            workers = spec.n_workers or defaults.n_workers
            demand = InstanceDemand(instance_type, workers, workers if spec.warm_pool else 0,
                                    f"this run (--n_workers {workers})", "lower --n_workers")
            check_quotas(session, setup.region, [demand])
        return setup
    if spec.backend == DOCKER:
        from stbench.backends.jobs.local_docker import LocalDockerJobService

        service = LocalDockerJobService.probe()
        service.check_image(trainer_image(spec, benchmark))
    return None


def make_backend(spec: ExperimentSpec, benchmark: Benchmark, method: str, seed: int,
                 folder: Path, first_trial_id: int, note: Any, setup: Any,
                 files: TrialFiles, pricing: TrialPricing) -> TrialBackend:
    """One experiment's back-end; `setup` is what `check_backend` confirmed, `files` the
    run's planned channels and packed code, `pricing` what its trials cost.
    Job back-ends bill their jobs at that price: on SageMaker the trials' own type, for
    trainer containers the SageMaker jobs they stand for, not the (shared) local type."""
    if spec.backend == SIMULATED:
        from stbench.backends.simulated.backend import SimulatedBackend
        from stbench.backends.simulated.tables import IndexedTable, TrialDraws

        draws = (TrialDraws.for_experiment(int(spec.random_seed or 0), seed)
                 if isinstance(setup.blackbox, IndexedTable) else None)
        return SimulatedBackend(setup.blackbox, benchmark.max_resource_attr, setup.start_latency,
                                int(spec.n_workers or 1), first_trial_id=first_trial_id,
                                trial_seeds=draws)
    if spec.backend == LOCAL:
        from stbench.backends.process.backend import LocalProcessBackend

        backend = LocalProcessBackend(benchmark.script, folder / "trials",
                                      first_trial_id=first_trial_id,
                                      environment=files.environment())
        backend.start_supervisor()  # imports happen before the clock starts
        return backend
    from stbench.backends.jobs.backend import JobBackend
    from stbench.backends.jobs.code_upload import publish_code
    from stbench.backends.jobs.job_requests import LOCAL_ROLE, JobTemplate
    from stbench.backends.jobs.job_service import RetryCounts
    from stbench.backends.jobs.local_docker import LocalDockerJobService

    tags = {"stbench:experiment-tag": spec.experiment_tag, "stbench:benchmark": benchmark.name,
            "stbench:method": tag_value(method), "stbench:seed": str(seed)}
    base = experiment_base(spec.experiment_tag, benchmark.name, method, seed)
    max_runtime = int(float(spec.max_wallclock_time or 3600)) + 600
    keep_alive = KEEP_ALIVE_SECONDS if spec.warm_pool else 0
    retries = RetryCounts()  # the adapter counts throttles botocore retried, the backend the rest
    service: Any
    if spec.backend == SAGEMAKER:
        import boto3

        from stbench.backends.jobs.sagemaker import SageMakerJobService

        where = setup.experiment_uri(spec.experiment_tag, benchmark.name, method, seed)
        image, role = setup.image_uri, setup.role_arn
        session = boto3.session.Session(region_name=setup.region)
        service = SageMakerJobService(session, base, retries=retries)
        study_uri = setup.study_uri(spec.experiment_tag)
        inputs = files.job_inputs(benchmark, lambda package: publish_code(
            package, study_uri, lambda: session.client("s3")))
    else:  # local Docker: checkpoints and outputs in the experiment's folder
        where = f"file://{folder.resolve()}"
        image, role = trainer_image(spec, benchmark), LOCAL_ROLE
        service = LocalDockerJobService(work_dir=folder.resolve() / "jobs" / base,
                                        study=spec.experiment_tag, experiment=base)
        study_root = f"file://{folder.resolve().parents[2]}"
        inputs = files.job_inputs(benchmark, lambda package: publish_code(package, study_root))
    price = pricing.usd_per_hour
    prices = {str(spec.instance_type): price} if price is not None else {}
    template = JobTemplate(
        image=image, benchmark=inputs.benchmark, instance_type=str(spec.instance_type),
        checkpoint_root=f"{where}/checkpoints/", output_root=f"{where}/output/", role_arn=role,
        keep_alive_seconds=keep_alive, max_runtime_seconds=max_runtime, tags=tags,
        metrics=(benchmark.metric,),
        inputs=inputs.channels, environment={TAG_ENV: spec.experiment_tag},
    )
    backend = JobBackend(service, template, base, first_trial_id=first_trial_id, on_note=note,
                         prices=prices, logs_dir=folder / "trials", retries=retries,
                         capacity_patience_seconds=spec.max_capacity_wait)
    if spec.resume:  # jobs of an earlier run that was killed: stopped, their ids not reused
        backend.recover()
    return backend
