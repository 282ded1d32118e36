"""Worker utilization with short trials: stbench's loop vs Syne Tune's Tuner, same workload.

Workload: `synthetic_curves`, random search, 2 workers, N trials (default 100) of 5 epochs x
0.1 s (about 0.5 s of work each). Utilization = seconds of trial work (reports x epoch
duration) / (n_workers x wall-clock seconds from loop start to the last trial's end).

    python bench/turnaround.py                 # all three variants, stbench 5 times
    python bench/turnaround.py --trials 30 --repeats 1     # quicker

Run it when the machine is quiet (`uptime`): on 2 shared cores, other work's load lengthens
every trial's sleeps and starts, and stbench's figure with them. The 1-minute load average
at the start and the end is printed and written with the table.

Prints a Markdown table; with --write, replaces the section in docs/performance.md.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from docs_section import publish  # noqa: E402  (this folder)

from stbench.model.catalog import load_benchmark  # noqa: E402
from stbench.model.spec import ExperimentSpec  # noqa: E402

EPOCHS, EPOCH_DURATION, N_WORKERS = 5, 0.1, 2
SECTION = "## Trial turnaround (bench/turnaround.py)"


def run_stbench(trials: int, seed: int) -> dict[str, float]:
    from stbench.orchestration import study_runner as study

    with tempfile.TemporaryDirectory() as root:
        spec = ExperimentSpec(
            benchmark="synthetic_curves", method=("RS",), experiment_tag="turnaround",
            n_workers=N_WORKERS, max_wallclock_time=3600, max_num_trials=trials,
            random_seed=seed, results_root=root,
            extra_args={"epochs": str(EPOCHS), "epoch_duration": str(EPOCH_DURATION)},
        )
        plan = study.plan_study(spec)
        start = time.monotonic()
        # progress goes to a buffer: measure the loop, not the terminal
        outcome = study.run_experiment(plan, plan.experiments[0], progress_stream=io.StringIO())
        wall = time.monotonic() - start
        store = study.ResultStore.load_previous(plan.experiments[0].folder)
        reports = len(store.rows)
    return {"trials": outcome.trials, "reports": reports, "wall": wall,
            "utilization": reports * EPOCH_DURATION / (N_WORKERS * wall)}


def run_tuner(trials: int, seed: int, sleep_time: float | None) -> dict[str, float]:
    from syne_tune import StoppingCriterion, Tuner
    from syne_tune.backend import LocalBackend
    from syne_tune.optimizer.baselines import RandomSearch
    from syne_tune.report import retrieve

    bench = load_benchmark("synthetic_curves").with_fixed_values(
        {"epochs": str(EPOCHS), "epoch_duration": str(EPOCH_DURATION)}
    )
    with tempfile.TemporaryDirectory() as root:
        os.environ["SYNETUNE_FOLDER"] = root
        backend = LocalBackend(entry_point=str(bench.script))
        options = {} if sleep_time is None else {"sleep_time": sleep_time}
        tuner = Tuner(
            trial_backend=backend,
            scheduler=RandomSearch(bench.config_space, metrics=[bench.metric], random_seed=seed),
            stop_criterion=StoppingCriterion(max_num_trials_finished=trials),
            n_workers=N_WORKERS, print_update_interval=3600, **options,
        )
        start = time.monotonic()
        tuner.run()
        wall = time.monotonic() - start
        reports = sum(len(retrieve(backend.stdout(t))) for t in backend.trial_ids)
    return {"trials": len(backend.trial_ids), "reports": reports, "wall": wall,
            "utilization": reports * EPOCH_DURATION / (N_WORKERS * wall)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5, help="runs of stbench (median)")
    parser.add_argument("--skip-fast-tuner", action="store_true")
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = parser.parse_args()

    import logging

    logging.getLogger("syne_tune").setLevel(logging.ERROR)
    rows = []
    load_start = os.getloadavg()[0]
    ours = []
    for seed in range(args.repeats):
        ours.append(run_stbench(args.trials, seed))
        print(f"stbench run {seed + 1}: {ours[-1]}", flush=True)
    utilizations = sorted(r["utilization"] for r in ours)
    median = statistics.median(utilizations)
    best_of = min(ours, key=lambda r: abs(r["utilization"] - median))
    rows.append(("stbench (event-driven loop, forked trials)", best_of))
    spread = ", ".join(f"{u:.3f}" for u in utilizations)
    print(f"stbench utilization: median {median:.3f} of {args.repeats} (sorted: {spread})",
          flush=True)
    default = run_tuner(args.trials, 0, None)
    rows.append(("Syne Tune Tuner + LocalBackend, defaults (sleep_time 5 s)", default))
    print(f"tuner default: {default}", flush=True)
    if not args.skip_fast_tuner:
        fast = run_tuner(args.trials, 0, 0.05)
        rows.append(("Syne Tune Tuner + LocalBackend, sleep_time 0.05 s", fast))
        print(f"tuner fast: {fast}", flush=True)

    lines = [
        SECTION, "",
        f"Workload: `synthetic_curves`, RS, {N_WORKERS} workers, {args.trials} trials of "
        f"{EPOCHS} x {EPOCH_DURATION} s. Utilization = trial work / (workers x wall-clock). "
        f"stbench figure: the median of {args.repeats} run(s) (all, sorted: {spread}). "
        f"Measured on {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, "
        f"{os.cpu_count()} cores, 1-minute load average {load_start:.1f} at the start and "
        f"{os.getloadavg()[0]:.1f} at the end.",
        "",
        "| variant | trials | wall-clock s | utilization | vs Tuner default |",
        "|---|---|---|---|---|",
    ]
    for name, r in rows:
        ratio = r["utilization"] / default["utilization"]
        lines.append(f"| {name} | {r['trials']} | {r['wall']:.1f} | {r['utilization']:.3f} | "
                     f"{ratio:.1f}x |")
    publish(lines, args.write)


if __name__ == "__main__":
    main()
