"""The orchestrator's cost at scale: the job back-end and the experiment loop against a
simulated SageMaker (tests/simulated_jobs.py) with 64, 512 and 2048 workers.

Each variant runs in its own process (peak RSS is per process): random search on
`synthetic_curves`, every trial a job of EPOCHS reports whose seconds per epoch are drawn per
job (seeded), the real result store writing into a temporary folder and the real progress
printer writing to a buffer. Measured: decision overhead (from a describe that first shows a
job's end to the next CreateTrainingJob, median and p99, and its median over the first and
the last tenth of the trials, which shows whether it grows with the trials already
finished), the loop's CPU per trial (the simulator's own CPU subtracted), peak RSS, API calls
and job names per poll.

    python bench/scale.py                          # 64, 512 (100k trials), 2048; a table
    python bench/scale.py --workers 64 --trials 5000
    python bench/scale.py --write                  # also rewrites the section in docs/
    python bench/scale.py --workers --endpoint_workers 8 16 32 --write   # endpoint arm only

Prints a Markdown table; with --write, replaces the section in docs/performance.md.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from docs_section import PERFORMANCE_DOC, publish  # noqa: E402  (this folder)
from scale_endpoint import (  # noqa: E402
    combined,
    endpoint_rows,
    published_section,
    run_endpoint_one,
    run_endpoint_variants,
)

SECTION = "## Orchestrator cost at scale (bench/scale.py)"
EPOCHS = 2
DEFAULT_TRIALS = {64: 10_000, 512: 100_000, 2048: 40_000}
TRIAL_MINUTES = 10  # for CPU per hour of a real study: each worker ends a trial per 10 min


def epoch_seconds(n_workers: int) -> tuple[float, float]:
    """Trials long enough that the loop keeps up (about 1 ms of loop work per trial end at
    any scale), short enough that 100k of them end in minutes."""
    mean = max(0.05, n_workers * 0.0012 / EPOCHS)
    return (0.5 * mean, 1.5 * mean)


def run_one(n_workers: int, trials: int, seed: int) -> dict[str, float]:
    from simulated_jobs import SimulatedJobService

    from stbench.backends.jobs.backend import JobBackend
    from stbench.backends.jobs.job_requests import JobTemplate
    from stbench.methods.registry import MethodContext, get_method
    from stbench.model.catalog import load_benchmark
    from stbench.orchestration.experiment import ExperimentLoop
    from stbench.orchestration.loop_state import Budget
    from stbench.orchestration.progress import Progress
    from stbench.orchestration.store import ResultStore

    bench = load_benchmark("synthetic_curves").with_fixed_values({"epochs": str(EPOCHS)})
    scheduler = get_method("RS").make_scheduler(MethodContext.for_benchmark(bench, seed))
    service = SimulatedJobService(seed=seed, epoch_seconds=epoch_seconds(n_workers),
                                  poll_seconds=0.02)
    template = JobTemplate(image="trainer", benchmark=bench.name, instance_type="ml.c5.large",
                           checkpoint_root="s3://b/ckpt/", output_root="s3://b/out/")
    backend = JobBackend(service, template, "scale", prices={"ml.c5.large": 0.119})
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as root:
        store = ResultStore(Path(root) / "exp", {"status": "new"})
        loop = ExperimentLoop(scheduler, backend, store,
                              Budget(24 * 3600, n_workers, 10**9, trials), bench.metric,
                              bench.mode, Progress("scale", stream=io.StringIO()))
        cpu, wall = time.process_time(), time.monotonic()
        outcome = loop.run()
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    decisions = sorted(service.decision_seconds)
    tenth = max(1, len(service.decision_seconds) // 10)
    polls = service.calls["ReadMetrics"] or 1
    loop_cpu = cpu - service.service_seconds
    return {
        "workers": n_workers, "trials": outcome.trials, "wall_s": wall,
        "decision_p50_ms": 1000 * statistics.median(decisions),
        "decision_p99_ms": 1000 * decisions[int(0.99 * (len(decisions) - 1))],
        "first_tenth_p50_ms": 1000 * statistics.median(service.decision_seconds[:tenth]),
        "last_tenth_p50_ms": 1000 * statistics.median(service.decision_seconds[-tenth:]),
        "loop_cpu_ms_per_trial": 1000 * loop_cpu / outcome.trials,
        "loop_cpu_share": loop_cpu / wall,
        "rss_before_mb": rss_before,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "polls": polls,
        "calls_per_poll": (service.calls["DescribeTrainingJob"]
                           + service.calls["ReadMetrics"]) / polls,
        "names_per_poll": service.names_asked["DescribeTrainingJob"] / polls,
        "max_names_per_poll": n_workers,
        "creates": service.calls["CreateTrainingJob"],
    }


def asha_rung_costs(sizes: tuple[int, ...] = (1_000, 10_000, 100_000),
                    reports: int = 5) -> list[tuple[int, float, float]]:
    """Milliseconds per report that reaches an ASHA rung holding n trials: Syne Tune's
    `Bracket` and stbench's `SortedRungBracket` (same decisions)."""
    import numpy as np
    from syne_tune.optimizer.schedulers.asha import Bracket

    from stbench.methods.asha_rungs import SortedRungBracket

    rng = np.random.default_rng(np.random.SeedSequence(0).spawn(1)[0])
    rows = []
    for n in sizes:
        values = rng.random(n + reports)
        costs = []
        for cls in (Bracket, SortedRungBracket):
            bracket = cls(1, 9, 3, 0)
            if cls is Bracket:  # its rung is a dict; filled by on_result it takes O(n^2)
                bracket.rungs[-1][1].update({i: {"loss": float(values[i])} for i in range(n)})
            for trial_id in range(n if cls is SortedRungBracket else 0):
                bracket.on_result(trial_id, 1, {"loss": float(values[trial_id])})
            gc.collect()  # not a full collection of the n dicts just made, in the timing
            start = time.perf_counter()
            for trial_id in range(n, n + reports):
                bracket.on_result(trial_id, 1, {"loss": float(values[trial_id])})
            costs.append(1000 * (time.perf_counter() - start) / reports)
        rows.append((n, costs[0], costs[1]))
    return rows


def run_variant(n_workers: int, trials: int, seed: int) -> dict[str, float]:
    """In a fresh process, so that its peak RSS is its own."""
    out = subprocess.run([sys.executable, __file__, "--one", str(n_workers), "--trials",
                          str(trials), "--seed", str(seed)], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout.splitlines()[-1])


def table(results: list[dict[str, float]], load: str,
          asha: list[tuple[int, float, float]]) -> list[str]:
    lines = [
        SECTION, "",
        f"Measured from {load}, {os.cpu_count()} cores) with `python bench/scale.py "
        "--write`: the job back-end and the experiment loop against tests/simulated_jobs.py, "
        "random search on "
        f"`synthetic_curves`, {EPOCHS} reports per trial, each job's seconds per epoch drawn "
        "uniformly (seeded), the result store writing to disk. Decision: from a describe that "
        "first shows a job's end to the next CreateTrainingJob (median, p99, and medians of "
        "the first and last tenth of the trials: equal when the cost does not grow with the "
        "trials already finished). Loop CPU: the process's CPU minus the simulator's own. "
        f"CPU per hour of study: at {TRIAL_MINUTES}-minute trials, i.e. n_workers x "
        f"{60 // TRIAL_MINUTES} trial ends per hour.", "",
        "| n_workers | trials | decision p50 ms | p99 ms | p50 first / last tenth ms | "
        "loop CPU ms/trial | loop CPU s per study hour | peak RSS MB | calls/poll | "
        "job names described/poll |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        per_hour = r["loop_cpu_ms_per_trial"] / 1000 * r["workers"] * 60 / TRIAL_MINUTES
        lines.append(
            f"| {r['workers']} | {r['trials']} | {r['decision_p50_ms']:.2f} | "
            f"{r['decision_p99_ms']:.1f} | {r['first_tenth_p50_ms']:.2f} / "
            f"{r['last_tenth_p50_ms']:.2f} | {r['loop_cpu_ms_per_trial']:.2f} | "
            f"{per_hour:.1f} | {r['peak_rss_mb']:.0f} | {r['calls_per_poll']:.1f} | "
            f"{r['names_per_poll']:.0f} (of {r['workers']} running) |")
    lines += [
        "", "Calls per poll: one DescribeTrainingJob batch (the running jobs and the jobs not "
        "yet billed) and one metrics read (the running jobs), once per loop iteration. The "
        "simulator's calls stand for the SageMaker adapter's, whose page counts are in the "
        "API calls section. What was fixed to get here, each with a unit test: results are "
        "appended instead of rewritten each second "
        "(trial status changes go to trial_updates.jsonl until the end), a poll walks only the "
        "open trials and unbilled jobs, the loop's second question (busy workers) reuses the "
        "poll, finished trials' reports are let go, and every 1000 finished trials "
        "`gc.freeze()` keeps Python's full collections off their bookkeeping.",
        "", "Why a decision takes longer with more workers here: so that 100k trials end in "
        "minutes, the simulated trials end at about 800 per second at 512 and 2048 workers "
        "(their length grows with n_workers), so each poll sees tens of ended jobs, and a "
        "decision waits for the whole batch's results to be processed and for the creates "
        "before its own. The loop's CPU per trial stays within 0.2-0.6 ms. A real "
        "512-worker study with 10-minute trials ends under one trial per second: a batch of "
        "a few per poll. On a 2-core machine loaded by other work, wall-clock milliseconds "
        "are several times the CPU milliseconds; the load is given above.",
        "", "Syne Tune's ASHA decides each report at a rung by sorting every value recorded "
        "there, so its cost grows with the trials already finished; stbench's ASHA family "
        "(ASHA, BOHB, MOBSTER, ASHABORE, ASHACQR) keeps each rung sorted instead (same "
        "decisions, stbench/methods/asha_rungs.py). Milliseconds per report reaching a rung of "
        "n trials:", "",
        "| trials at the rung | Syne Tune 0.16 Bracket ms | stbench sorted rung ms |",
        "|---|---|---|",
    ]
    lines += [f"| {n} | {theirs:.2f} | {ours:.3f} |" for n, theirs, ours in asha]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="*", default=sorted(DEFAULT_TRIALS))
    parser.add_argument("--trials", type=int, default=None,
                        help="trials per variant (default: 10k, 100k, 40k)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--endpoint_workers", type=int, nargs="*", default=[],
                        help="also on the local SageMaker endpoint with these n_workers (3 x n "
                        "trials each; needs Docker, the trainer image and docker-registry)")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--endpoint_one", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--image", default="", help=argparse.SUPPRESS)
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(run_one(args.one, args.trials, args.seed)), flush=True)
        return
    if args.endpoint_one is not None:
        print(json.dumps(run_endpoint_one(args.endpoint_one, args.trials, args.seed,
                                          args.image)), flush=True)
        return
    load = (f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC (1-minute load average "
            f"{os.getloadavg()[0]:.1f} at the start")
    results = []
    for n in args.workers:
        trials = args.trials or DEFAULT_TRIALS.get(n, 100 * n)
        results.append(run_variant(n, trials, args.seed))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    simulated = table(results, load, asha_rung_costs()) if results else []
    endpoint = (endpoint_rows(run_endpoint_variants(args.endpoint_workers, args.seed))
                if args.endpoint_workers else [])
    publish(combined(simulated, endpoint, published_section(PERFORMANCE_DOC, SECTION)),
            args.write)


if __name__ == "__main__":
    main()
