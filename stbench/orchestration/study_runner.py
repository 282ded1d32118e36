"""A study: every (method, seed) of one spec, run one after another (a simulated study's
on several processes, see parallel_study.py).

All checks happen in `plan_study` (the shared `planning.plan_run`, then the back-end's
service and the results folders) before anything is written, so bad input creates nothing.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from syne_tune.backend.trial_status import Status, Trial
from syne_tune.optimizer.scheduler import SchedulerDecision, TrialScheduler
from threadpoolctl import ThreadpoolController, threadpool_limits

from stbench.methods.registry import MethodContext, variant_scheduler, variant_settings
from stbench.model.backend_names import SIMULATED
from stbench.model.benchmark import Benchmark
from stbench.model.errors import UserError
from stbench.model.seeding import spawn_seeds
from stbench.model.spec import ExperimentSpec
from stbench.model.trial_pricing import TrialPricing
from stbench.orchestration.backend_factory import check_backend, make_backend
from stbench.orchestration.cost_meter import CostMeter
from stbench.orchestration.experiment import ExperimentLoop
from stbench.orchestration.loop_state import Budget, ExperimentOutcome, LoopState, RealClock
from stbench.orchestration.planning import plan_run
from stbench.orchestration.progress import Progress
from stbench.orchestration.store import (
    INTERRUPTED,
    PreviousRun,
    ResultStore,
    experiment_dir,
    versions,
)
from stbench.orchestration.trial_inputs import TrialFiles


@dataclass(frozen=True)
class PlannedExperiment:
    method: str
    seed: int
    folder: Path
    previous: PreviousRun | None


@dataclass(frozen=True)
class StudyPlan:
    spec: ExperimentSpec  # resolved: no None defaults left
    benchmark: Benchmark  # with the spec's extra args applied
    experiments: tuple[PlannedExperiment, ...]
    pricing: TrialPricing  # what a trial costs
    backend_setup: Any = None  # what the backend's checks confirmed (SageMaker setup)
    files: TrialFiles = field(default_factory=TrialFiles)  # channels, a user folder packed


def one_thread_calls() -> Callable[[], AbstractContextManager[Any]]:
    """A context for the method's calls: one BLAS and OpenMP thread inside, the process's
    own thread counts again outside. The GP searchers' NumPy/SciPy algebra otherwise runs
    on every core's thread, and OpenBLAS and OpenMP threads spin while they wait for work,
    against the trials on the same machine; a trial or trial supervisor forked later keeps
    the process's own counts. Made once per experiment (finding the libraries takes ms;
    each call then costs tens of microseconds)."""
    controller = ThreadpoolController()
    return lambda: controller.limit(limits=1)


def plan_study(spec: ExperimentSpec) -> StudyPlan:
    """Validate everything and decide what runs; writes nothing."""
    run = plan_run(spec)
    spec, benchmark = run.spec, run.benchmark
    backend_setup = check_backend(spec, benchmark)
    if not spec.experiment_tag:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        spec = replace(spec, experiment_tag=f"{benchmark.name.replace('_', '-')}-{stamp}")
    root = Path(spec.results_root)
    _check_writable(root)
    previous_seed: int | None = None
    experiments = []
    for method in (variant.label for variant in spec.variants()):
        for seed in spec.seeds:
            folder = experiment_dir(root, spec.experiment_tag, benchmark.name, method, seed)
            previous = None
            if ResultStore.exists(folder):
                if not spec.resume:
                    raise UserError(
                        f"results already exist in {folder}; pass --resume to continue them "
                        "or choose a new --experiment_tag"
                    )
                previous = ResultStore.load_previous(folder)
                recorded = previous.metadata.get("spec", {}).get("random_seed")
                previous_seed = recorded if previous_seed is None else previous_seed
            experiments.append(PlannedExperiment(method, seed, folder, previous))
    if previous_seed is not None and spec.random_seed is None:
        spec = replace(spec, random_seed=previous_seed)  # resume keeps the recorded pairing
    return StudyPlan(spec.resolved(benchmark), benchmark, tuple(experiments), run.pricing,
                     backend_setup, run.files)


def run_study(plan: StudyPlan, progress_stream: Any = None) -> list[ExperimentOutcome]:
    """Every experiment not completed before; a simulated study's on `spec.jobs` processes.

    Simulated experiments run with one BLAS/OpenMP thread, in one process or several: the
    same arithmetic whatever --jobs (so the same rows), and no thread pools spinning against
    each other on shared cores (two OpenBLAS threads made a GP-based experiment 5-10x
    slower on the loaded 2-core machine)."""
    done = {index: _outcome_of(planned.previous) for index, planned in enumerate(plan.experiments)
            if planned.previous and planned.previous.metadata.get("status") == "completed"}
    pending = [index for index in range(len(plan.experiments)) if index not in done]
    simulated = plan.spec.backend == SIMULATED
    jobs = min(int(plan.spec.jobs or 1), len(pending))
    if jobs > 1:
        from stbench.orchestration.parallel_study import run_in_processes

        done.update(run_in_processes(plan, pending, jobs, run_experiment, progress_stream))
    else:
        with threadpool_limits(1) if simulated else contextlib.nullcontext():
            for index in pending:
                done[index] = run_experiment(plan, plan.experiments[index], progress_stream)
    return [done[index] for index in range(len(plan.experiments))]


def run_experiment(plan: StudyPlan, planned: PlannedExperiment, progress_stream: Any = None,
                   live_progress: bool = True) -> ExperimentOutcome:
    """One experiment; without `live_progress` only its notes and final line are written."""
    spec, benchmark = plan.spec, plan.benchmark
    scheduler = seeded_scheduler(planned.method, benchmark, spec.scheduler_seed(planned.seed))
    store = ResultStore(planned.folder, _metadata(plan, planned))
    previous = planned.previous
    if previous is not None:
        replay(scheduler, previous, store, benchmark.metric)
    label = f"{benchmark.name} {planned.method} seed {planned.seed}"
    progress = Progress(label, stream=progress_stream,
                        log_interval=10.0 if live_progress else math.inf)
    backend = make_backend(spec, benchmark, planned.method, planned.seed, planned.folder,
                           previous.next_trial_id if previous else 0, progress.note,
                           plan.backend_setup, plan.files, plan.pricing)
    state = LoopState(clock=getattr(backend, "clock", None) or RealClock(),
                      elapsed_offset=previous.elapsed_seconds if previous else 0.0,
                      trials_started=previous.trials_that_count if previous else 0)
    budget = Budget(
        max_wallclock_time=float(spec.max_wallclock_time or 0),
        n_workers=int(spec.n_workers or 1),
        max_failures=spec.max_failures,
        max_num_trials=spec.max_num_trials,
        max_cost=spec.max_cost,
    )
    loop = ExperimentLoop(scheduler, backend, store, budget, benchmark.metric, benchmark.mode,
                          progress, state, _cost_meter(plan, backend, previous),
                          None if spec.backend == SIMULATED else one_thread_calls())
    return loop.run()


def _cost_meter(plan: StudyPlan, backend: Any, previous: PreviousRun | None) -> CostMeter:
    """Prices the experiment's trials: the back-end's own billing where it has one (SageMaker
    jobs, and trainer containers priced at the SageMaker type), else an estimate from the
    trials' running time. A resumed experiment starts from what its earlier runs spent."""
    billed = getattr(backend, "spent_usd", None)
    spent_before = float((previous.metadata.get("spent_usd") or 0.0) if previous else 0.0)
    return CostMeter(plan.pricing, billed, spent_before)


def seeded_scheduler(method: str, benchmark: Benchmark, scheduler_seed: int) -> TrialScheduler:
    """The method's scheduler, with every RNG it draws from seeded from `scheduler_seed`.

    `method` is a variant's label (`ASHA(reduction_factor=4)`): variants of one method get the
    same seeds as the method, so they stay paired with it and with each other.

    Syne Tune 0.16's random searchers and ASHA's bracket choice draw from the global numpy
    RNG and ignore `random_seed`, so the global RNGs are seeded too, for reproducibility.
    Each generator gets its own derived seed: one seed in two generators makes them draw the
    same numbers, and ASHA then repeats configurations a few trials apart.
    """
    method_seed, numpy_seed, python_seed = spawn_seeds(scheduler_seed, 3)
    np.random.seed(numpy_seed)
    random.seed(python_seed)
    return variant_scheduler(method, MethodContext.for_benchmark(benchmark, method_seed))


def replay(scheduler: TrialScheduler, previous: PreviousRun, store: ResultStore,
           metric: str) -> None:
    """Feed an interrupted run's reports to a fresh scheduler and keep them in the store.

    Trials that were still running are kept as `Interrupted`; their ids are never reused.
    """
    final_status: dict[int, str] = {}
    last_metrics: dict[int, dict[str, Any]] = {}
    for row in previous.rows:
        status = row["status"]
        final_status[row["trial_id"]] = (
            INTERRUPTED if status in (Status.in_progress, Status.stopping) else status
        )
    trials: dict[int, Trial] = {}
    removed: set[int] = set()
    for row in previous.rows:  # original order, so the scheduler sees the same history
        trial_id = row["trial_id"]
        if trial_id not in trials:
            trials[trial_id] = Trial(trial_id, row["config"], creation_time=datetime.now())
            scheduler.on_trial_add(trials[trial_id])
        store.add_row({**row, "status": final_status[trial_id]})
        if trial_id in removed or metric not in row["metrics"]:
            continue
        last_metrics[trial_id] = dict(row["metrics"])
        decision = scheduler.on_trial_result(trials[trial_id], dict(row["metrics"]))
        if decision in (SchedulerDecision.STOP, SchedulerDecision.PAUSE):
            scheduler.on_trial_remove(trials[trial_id])
            removed.add(trial_id)
    for trial_id, trial in trials.items():
        if trial_id in removed:
            continue
        if final_status[trial_id] == Status.completed and trial_id in last_metrics:
            scheduler.on_trial_complete(trial, last_metrics[trial_id])
        else:
            scheduler.on_trial_error(trial)


def _metadata(plan: StudyPlan, planned: PlannedExperiment) -> dict[str, Any]:
    benchmark = plan.benchmark
    base = dict(planned.previous.metadata) if planned.previous else {}
    base.update(
        experiment_tag=plan.spec.experiment_tag,
        benchmark=benchmark.name,
        method=planned.method,
        method_settings=variant_settings(planned.method),
        seed=planned.seed,
        scheduler_seed=plan.spec.scheduler_seed(planned.seed),
        metric=benchmark.metric,
        mode=benchmark.mode,
        resource_attr=benchmark.resource_attr,
        optimum=benchmark.optimum,
        spec=plan.spec.to_dict(),
        versions=versions(),
        resumed=planned.previous is not None,
    )
    base.update(plan.pricing.describe())
    if plan.spec.backend == SIMULATED:  # where the curves come from, the surrogate's error
        base["simulation"] = plan.backend_setup.describe()
    return base


def _outcome_of(previous: PreviousRun) -> ExperimentOutcome:
    meta = previous.metadata
    return ExperimentOutcome(meta.get("status", "completed"), "already completed",
                             int(meta.get("trials", 0)), int(meta.get("failures", 0)),
                             meta.get("best"))


def _check_writable(root: Path) -> None:
    existing = root.resolve()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(
            f"results root {root} is not writable ({existing} is not a writable folder); "
            "pass --results_root with a folder you can write"
        )

