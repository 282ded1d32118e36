"""Memory at scale (issue 14, P6): the orchestrator's memory grows by a small constant per
finished trial (at 100k trials it must stay under 500 MB), not by every report it has seen:
the back-end lets go of finished trials' reports and the loop of their last results."""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

from simulated_jobs import SimulatedJobService

from stbench.backends.jobs.backend import JobBackend
from stbench.backends.jobs.job_requests import JobTemplate
from stbench.methods.registry import MethodContext, get_method
from stbench.model.catalog import load_benchmark
from stbench.orchestration.experiment import ExperimentLoop
from stbench.orchestration.loop_state import Budget
from stbench.orchestration.progress import SilentProgress
from stbench.orchestration.store import ResultStore

REPORTS = 9  # per trial: what a finished trial may no longer hold on to


def after_experiment(trials: int, folder: Path) -> tuple[int, int]:
    """Python memory held after an experiment of `trials` trials, the loop still alive, and
    how many objects a full garbage collection walks then."""
    bench = load_benchmark("synthetic_curves").with_fixed_values({"epochs": str(REPORTS)})
    scheduler = get_method("RS").make_scheduler(MethodContext.for_benchmark(bench, 3))
    service = SimulatedJobService(epoch_seconds=(0.0002, 0.0005), poll_seconds=0.001)
    template = JobTemplate(image="trainer", benchmark=bench.name, instance_type="ml.c5.large",
                           checkpoint_root="s3://b/ckpt/", output_root="s3://b/out/")
    backend = JobBackend(service, template, "mem", prices={"ml.c5.large": 0.119})
    store = ResultStore(folder, {"status": "new"})
    loop = ExperimentLoop(scheduler, backend, store, Budget(600, 16, 10**6, trials),
                          bench.metric, bench.mode, SilentProgress())
    tracemalloc.start()
    try:
        assert loop.run().trials == trials
        gc.collect()
        return tracemalloc.get_traced_memory()[0], len(gc.get_objects(generation=2))
    finally:
        tracemalloc.stop()


def test_memory_per_finished_trial_does_not_hold_its_reports(tmp_path: Path) -> None:
    few, _ = after_experiment(200, tmp_path / "few")
    many, _ = after_experiment(1200, tmp_path / "many")
    per_trial = (many - few) / 1000
    assert per_trial < 2500, f"{per_trial:.0f} bytes per finished trial"


def test_full_collections_do_not_walk_the_finished_trials(tmp_path: Path) -> None:
    """Each walked them all: at 30k finished trials and 512 workers one took 0.4 s."""
    try:
        fewer = after_experiment(1100, tmp_path / "fewer")[1]
        more = after_experiment(2100, tmp_path / "more")[1]
    finally:
        gc.unfreeze()
    assert more - fewer < 1000, "1000 more finished trials, walked by every full collection"
