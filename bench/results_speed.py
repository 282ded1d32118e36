"""How long `stbench results` takes on a large tag: until the table is printed, until the plots
are written.

Workload: a generated tag of 120 experiments (6 benchmarks x 4 methods x 5 seeds) with 64k
report rows in all, written under build/results-speed/ in the format the result store writes
(metadata.json and results.jsonl per seed folder, simulated back-end). `stbench results` runs
as a user runs it, in a fresh process (so import time counts), N times; the figures are
medians. The same tag is summarized by the code of `--anchor COMMIT` too (by default the
commit before results were sped up; a git worktree made once under build/results-speed/), the
two runs alternating, so both see the same machine load; `--anchor none` times this tree only.

    python bench/results_speed.py --repeats 5
    python bench/results_speed.py --write   # docs/performance.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from docs_section import anchor_tree, publish  # noqa: E402  (this folder)

SECTION = "## Results summary speed (bench/results_speed.py)"
TAG = "results-speed"
ANCHOR = "e04a698"  # the last commit before the table came first and fast
BENCHMARKS = 6
METHODS = ("ASHA", "BO", "MOBSTER", "RS")
SEEDS = 5
ROWS = 64_000
BUDGET = 600.0
GENERATOR_SEED = 20261206


def generate(root: Path) -> int:
    """Write the tag under ``root`` (replacing an earlier one); returns the number of rows."""
    experiments = [(b, m, s) for b in range(BENCHMARKS) for m in METHODS for s in range(SEEDS)]
    per_experiment = ROWS // len(experiments)
    streams = np.random.SeedSequence(GENERATOR_SEED).spawn(len(experiments))
    total = 0
    for (bench, method, seed), stream in zip(experiments, streams, strict=True):
        rng = np.random.default_rng(stream)
        benchmark = f"bench_{bench}"
        mode = "min" if bench % 2 == 0 else "max"
        optimum = 0.1 if mode == "min" else 0.95
        folder = root / TAG / benchmark / method / str(seed)
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        time_now, trial_id = 0.0, 0
        while len(lines) < per_experiment:
            config = {"x": float(rng.uniform(-2, 2)), "log_lr": float(rng.uniform(-6, -1)),
                      "width": int(rng.integers(8, 256)), "epochs": 9}
            quality = rng.uniform(0, 1)
            epochs = int(rng.integers(1, 10))
            for epoch in range(1, epochs + 1):
                time_now += float(rng.exponential(BUDGET / per_experiment))
                curve = quality * (1 + 2.0 / epoch) + rng.normal(0, 0.02)
                value = optimum + curve if mode == "min" else optimum - 0.5 * curve
                status = "Completed" if epoch == 9 else "Stopped"
                lines.append(json.dumps({
                    "trial_id": trial_id, "status": status, "wallclock_time": round(time_now, 4),
                    "worker_time": 0.1 * epoch, "config": config,
                    "metrics": {"epoch": epoch, "score": value},
                    "cost_usd": round(1e-5 * epoch, 9),
                }))
            trial_id += 1
        (folder / "results.jsonl").write_text("\n".join(lines[:per_experiment]) + "\n")
        total += per_experiment
        metadata = {
            "experiment_tag": TAG, "benchmark": benchmark, "method": method, "seed": seed,
            "metric": "score", "mode": mode, "resource_attr": "epoch", "optimum": optimum,
            "spec": {"benchmark": benchmark, "method": [method], "experiment_tag": TAG,
                     "max_wallclock_time": BUDGET, "backend": "simulated", "n_workers": 2},
            "status": "completed", "elapsed_seconds": 3.0, "cost_estimated": True,
            "cost_instance_type": "ml.c5.xlarge", "cost_usd_per_hour": 0.204,
        }
        (folder / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    return total


def time_results(code: Path, root: Path, out_dir: Path) -> tuple[float, float, float, float]:
    """Seconds from process start until the table's rule line is on stdout, and until exit;
    the CPU seconds the process (and, at the end, the child that draws half of the plots)
    had used by then."""
    env = {**os.environ, "PYTHONPATH": str(code), "PYTHONUNBUFFERED": "1",
           "MPLBACKEND": "Agg"}
    # cwd and PYTHONPATH (ahead of the venv's editable install) choose whose stbench runs
    command = [sys.executable, "-c", "import sys; from stbench.cli.main import main; "
               "sys.exit(main())", "results", "--experiment_tag", TAG,
               "--results_root", str(root), "--out_dir", str(out_dir)]
    cpu_before = _children_cpu()
    start = time.perf_counter()
    table = None
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                          cwd=code, env=env) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if table is None and line.startswith("---"):
                table = time.perf_counter() - start
                table_cpu = _process_cpu(proc.pid)
        if proc.wait() != 0:
            raise SystemExit(f"stbench results failed with exit code {proc.returncode}")
    done = time.perf_counter() - start
    if table is None:
        raise SystemExit("stbench results printed no table")
    return table, done, table_cpu, _children_cpu() - cpu_before


def _process_cpu(pid: int) -> float:
    """User and system seconds of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anchor", default=ANCHOR,
                        help="the commit to compare with (default %(default)s), or none")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = parser.parse_args()

    root = REPO / "build" / "results-speed"
    rows = generate(root / "results")
    codes = {"this tree": REPO}
    if args.anchor != "none":
        codes = {f"anchor ({args.anchor})": anchor_tree(root, args.anchor), **codes}
    load_start = os.getloadavg()[0]
    times: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in codes}
    for repeat in range(args.repeats):
        for name, code in codes.items():
            times[name].append(time_results(code, root / "results", root / "plots" / name[:6]))
            table, done, table_cpu, cpu = times[name][-1]
            print(f"run {repeat + 1} {name}: table {table:.2f} s, done {done:.2f} s; CPU "
                  f"{table_cpu:.2f} s, {cpu:.2f} s", flush=True)
    lines = [
        SECTION, "",
        f"`stbench results` on a generated tag of {BENCHMARKS * len(METHODS) * SEEDS} "
        f"experiments ({BENCHMARKS} benchmarks x {len(METHODS)} methods x {SEEDS} seeds, "
        f"{rows} report rows, simulated back-end), in a fresh process as a user runs it: "
        "seconds from the process start until the table is printed, and until the plots are "
        f"written (the process ends). Medians of {args.repeats} runs, the variants alternating. "
        f"Measured on {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"1-minute load average {load_start:.1f} at the start and {os.getloadavg()[0]:.1f} "
        "at the end.",
        "",
        "| code | table printed (s) | plots done (s) | plots after the table (s) | "
        "CPU until the table (s) | CPU after it (s) |",
        "|---|---|---|---|---|---|",
    ]
    for name, runs in times.items():
        columns = [[t, d, d - t, tc, c - tc] for t, d, tc, c in runs]
        medians = [statistics.median(column) for column in zip(*columns, strict=True)]
        lines.append(f"| {name} | " + " | ".join(f"{m:.2f}" for m in medians) + " |")
    lines += [
        "",
        "The CPU columns are the process's user and system seconds (read from /proc when the "
        "table's rule line arrives, and at its end, with the child process that drew plots). "
        "Until the table the process runs on one thread, so on an idle machine wall-clock "
        "and CPU agree; on a busy one wall-clock is longer. The earlier code computed every "
        "comparison before printing anything; this one prints the table first, then computes "
        "the comparisons (including the critical-difference test) and draws the plots (15 "
        "here, 2 more than before: rank over time and the critical-difference diagram), most "
        "of whose time is matplotlib's layout and drawing. On Linux with 2 or more cores a "
        "forked child draws the second half of the plots while the process draws the first, "
        "which is why the CPU after the table exceeds its wall-clock.",
    ]
    publish(lines, args.write)


if __name__ == "__main__":
    main()
