"""Paired-seed ablations of stbench's GP searchers' options, stbench only, in simulated time.

    .venv/bin/python bench/gp_ablation.py run hartmann6_curves MOBSTER exp-decay-sum --num_seeds 20
    .venv/bin/python bench/gp_ablation.py compare hartmann6_curves MOBSTER default exp-decay-sum

`run` runs one variant (the searcher's constructor options below) on bench/quality.py's
settings and seeds, into build/quality/results/ablate-...; `compare` prints normalized regret
at 25/50/100 % of the budget for variants run with the same seeds, and the two-sided Wilcoxon
signed-rank p of each against the first (the seeds are paired: same benchmark draws).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))

import quality  # noqa: E402

import stbench.methods.gp_searcher as gp_searcher  # noqa: E402
from stbench.analysis.frame import load  # noqa: E402
from stbench.model.catalog import load_benchmark  # noqa: E402
from stbench.orchestration.study_runner import plan_study, run_study  # noqa: E402

VARIANTS: dict[str, dict[str, object]] = {
    "default": {},
    "priors": {"gp_priors": True},
    "exp-decay-sum": {"resource_kernel": "exp-decay-sum"},
    "exp-decay-sum+priors": {"resource_kernel": "exp-decay-sum", "gp_priors": True},
}
SEARCHERS = {"MOBSTER": "MultiFidelityGPEISearcher", "BO": "GPEISearcher"}


def tag(benchmark: str, method: str, variant: str, num_seeds: int) -> str:
    name = f"ablate-{benchmark}-{method}-{variant}-{num_seeds}"
    return name.lower().replace("_", "-").replace("+", "-")


def run(args: argparse.Namespace) -> None:
    name = SEARCHERS[args.method]
    searcher = getattr(gp_searcher, name)
    setattr(gp_searcher, name, functools.partial(searcher, **VARIANTS[args.variant]))
    spec = quality.study_spec(
        args.benchmark, argparse.Namespace(set=[], num_seeds=args.num_seeds, budget=None),
        experiment_tag=tag(args.benchmark, args.method, args.variant, args.num_seeds),
        results_root=str(args.work / "results"))
    # One process: spawned workers (--jobs) would import the searcher without the variant.
    spec = dataclasses.replace(spec, method=(args.method,), jobs=1)
    run_study(plan_study(spec), progress_stream=open("/dev/null", "w"))  # noqa: SIM115


def compare(args: argparse.Namespace) -> None:
    benchmark = load_benchmark(args.benchmark)
    budget, fixed = quality.SETTINGS[args.benchmark]
    benchmark = benchmark.with_fixed_values(fixed)
    optimum, median, _ = quality.reference_values(benchmark, [])
    table = {}
    for variant in args.variants:
        results, _ = load(args.work / "results",
                          tag(args.benchmark, args.method, variant, args.num_seeds))
        frames = results.dropna(subset=[benchmark.metric]).groupby("seed")
        runs = {seed: list(zip(f["wallclock_time"], f[benchmark.metric], strict=True))
                for seed, f in frames}
        table[variant] = {fraction: np.array([
            quality.regret_at(runs[s], budget, fraction, optimum, median, 1.0)
            for s in sorted(runs)]) for fraction in quality.CHECKPOINTS}
    first = args.variants[0]
    for variant, row in table.items():
        cells = []
        for fraction, values in row.items():
            cell = f"{values.mean():.4f}"
            if variant != first and np.any(values != table[first][fraction]):
                cell += f" (p {stats.wilcoxon(values, table[first][fraction]).pvalue:.2f})"
            cells.append(cell)
        print(f"{args.benchmark} {args.method} {variant:22s} n={len(row[1.0])}: "
              + " / ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=quality.ROOT / "build" / "quality")
    parser.add_argument("--num_seeds", type=int, default=20)
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("run")
    one.add_argument("benchmark")
    one.add_argument("method", choices=SEARCHERS)
    one.add_argument("variant", choices=VARIANTS)
    many = sub.add_parser("compare")
    many.add_argument("benchmark")
    many.add_argument("method", choices=SEARCHERS)
    many.add_argument("variants", nargs="+", choices=VARIANTS)
    args = parser.parse_args()
    run(args) if args.command == "run" else compare(args)


if __name__ == "__main__":
    main()
