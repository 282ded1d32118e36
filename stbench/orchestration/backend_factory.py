"""Choose and build the trial backend an experiment's spec asks for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from syne_tune.backend.trial_backend import TrialBackend

from stbench.model.benchmark import BUILTIN_DIR, Benchmark
from stbench.model.errors import UserError
from stbench.model.naming import experiment_base
from stbench.model.spec import ExperimentSpec

TRAINER_IMAGES = {"cpu": "stbench-trainer:latest", "gpu": "stbench-trainer-gpu:latest"}
KEEP_ALIVE_SECONDS = 600


def trainer_image(spec: ExperimentSpec, benchmark: Benchmark) -> str:
    return spec.image or TRAINER_IMAGES[benchmark.image]


def check_backend(spec: ExperimentSpec, benchmark: Benchmark) -> None:
    """Everything a backend needs, checked before any experiment folder is written."""
    if spec.backend == "sagemaker":
        raise UserError("--backend sagemaker is not available yet; use local or docker")
    if spec.backend == "docker":
        if benchmark.source.parent != BUILTIN_DIR:
            raise UserError(
                f"--backend docker runs built-in benchmarks (the trainer image holds their "
                f"scripts); {benchmark.source} is not one: use --backend local"
            )
        from stbench.backends.jobs.local_docker import LocalDockerJobService

        service = LocalDockerJobService.probe()
        service.check_image(trainer_image(spec, benchmark))


def make_backend(spec: ExperimentSpec, benchmark: Benchmark, method: str, seed: int,
                 folder: Path, first_trial_id: int, note: Any) -> TrialBackend:
    if spec.backend == "local":
        from stbench.backends.local_process import LocalProcessBackend

        backend = LocalProcessBackend(benchmark.script, folder / "trials",
                                      first_trial_id=first_trial_id)
        backend.start_supervisor()  # imports happen before the clock starts
        return backend
    from stbench.backends.jobs.backend import JobBackend
    from stbench.backends.jobs.local_docker import LocalDockerJobService
    from stbench.backends.jobs.requests import JobTemplate

    folder = folder.resolve()
    template = JobTemplate(
        image=trainer_image(spec, benchmark),
        benchmark=benchmark.name,
        instance_type=str(spec.instance_type),
        checkpoint_root=f"file://{folder / 'checkpoints'}/",
        output_root=f"file://{folder / 'output'}/",
        keep_alive_seconds=KEEP_ALIVE_SECONDS if spec.warm_pool else 0,
        max_runtime_seconds=int(float(spec.max_wallclock_time or 3600)) + 600,
        tags={"stbench:experiment-tag": spec.experiment_tag, "stbench:benchmark": benchmark.name,
              "stbench:method": method, "stbench:seed": str(seed)},
    )
    service = LocalDockerJobService(work_dir=folder / "jobs")
    base = experiment_base(spec.experiment_tag, benchmark.name, method, seed)
    return JobBackend(service, template, base, first_trial_id=first_trial_id, on_note=note)
