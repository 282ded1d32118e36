"""One call from a results folder to what a person looks at: a table and one plot per benchmark,
and, where a tag holds several benchmarks, methods or costs, the comparisons across them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from stbench.analysis.bootstrap import final_regrets, format_pairs, paired_bootstrap
from stbench.analysis.cost import cost_curves, cost_targets, dollars_to_target, format_to_target
from stbench.analysis.frame import load
from stbench.analysis.plot import plot_best_so_far
from stbench.analysis.plot_across import plot_across_benchmarks, plot_best_per_dollar
from stbench.analysis.regret import (
    across_benchmarks,
    benchmark_references,
    checkpoint_table,
    format_checkpoints,
    regret_over_time,
)
from stbench.analysis.summary import best_so_far, experiment_costs, final_table, format_table


@dataclass(frozen=True)
class Analysis:
    """Every frame behind the report, for people who make their own plots and tables."""

    results: pd.DataFrame  # one row per report (frame.load_results)
    experiments: pd.DataFrame  # one row per experiment (frame.load_experiments)
    table: pd.DataFrame  # per benchmark and method (summary.final_table)
    curves: pd.DataFrame  # best so far over time (summary.best_so_far)
    references: pd.DataFrame  # per benchmark: optimum, reference, budget (regret.py)
    regret: pd.DataFrame  # per experiment on a grid of budget fractions (regret.py)
    across: pd.DataFrame  # per method and fraction, averaged over benchmarks (regret.py)
    checkpoints: pd.DataFrame  # regret and rank at 25/50/100 % of the budget (regret.py)
    pairs: pd.DataFrame  # paired bootstrap of final regret per pair (bootstrap.py)
    costs: pd.DataFrame  # best so far against dollars, priced experiments only (cost.py)
    targets: pd.DataFrame  # per benchmark: the value that counts as reached (cost.py)
    to_target: pd.DataFrame  # per method: trial dollars until it reached it (cost.py)


def analyze(root: Path, experiment_tag: str) -> Analysis:
    """Load a tag's results and compute every frame of the report (no files written)."""
    df, experiments = load(Path(root), experiment_tag)
    curves = best_so_far(df)
    references = benchmark_references(curves, experiments)
    regret = regret_over_time(curves, experiments)
    across = across_benchmarks(regret)
    costs = cost_curves(df)
    targets = cost_targets(curves, references)
    return Analysis(
        results=df,
        experiments=experiments,
        table=final_table(df, experiments),
        curves=curves,
        references=references,
        regret=regret,
        across=across,
        checkpoints=checkpoint_table(across),
        pairs=paired_bootstrap(final_regrets(regret)),
        costs=costs,
        targets=targets,
        to_target=dollars_to_target(costs, experiment_costs(df), references, targets,
                                    experiments),
    )


def _status_line(experiment_tag: str, experiments: pd.DataFrame) -> str:
    """Say up front how many experiments are unfinished, so a partial table is not misread."""
    counts = Counter(str(s) for s in experiments["status"])
    detail = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    reports = int(experiments["n_reports"].sum())
    return (
        f"experiment tag '{experiment_tag}': {len(experiments)} experiments ({detail}), "
        f"{reports} reports"
    )


def report(root: Path, experiment_tag: str, out_dir: Path | None = None) -> tuple[str, list[Path]]:
    """Build the summary text and write ``<benchmark>.png`` per benchmark.

    PNGs go to ``out_dir``, by default ``<root>/<experiment_tag>/plots/``. Returns the text
    (a status line, a blank line, then the table) and the PNG paths sorted by benchmark.
    With several benchmarks the text adds normalized regret and mean rank at 25/50/100 % of
    the budget (and ``across_benchmarks.png``); with several methods, paired bootstrap
    verdicts; with costs, the trial dollars each method spent until it reached a target and
    ``<benchmark>_cost.png``. Raises ``UserError`` if the tag has no results.
    """
    root = Path(root)
    out_dir = Path(out_dir) if out_dir is not None else root / experiment_tag / "plots"
    analysis = analyze(root, experiment_tag)
    experiments, curves = analysis.experiments, analysis.curves
    text = f"{_status_line(experiment_tag, experiments)}\n\n{format_table(analysis.table)}"
    paths: list[Path] = []
    for benchmark, exps in experiments.groupby("benchmark", sort=True):
        paths.append(
            plot_best_so_far(
                curves,
                benchmark=str(benchmark),
                metric=str(exps["metric"].iloc[0]),
                mode=str(exps["mode"].iloc[0]),
                path=out_dir / f"{benchmark}.png",
            )
        )
    extra_text, extra_paths = _comparisons(analysis, out_dir)
    return "\n\n".join([text, *extra_text]), paths + extra_paths


def _comparisons(analysis: Analysis, out_dir: Path) -> tuple[list[str], list[Path]]:
    """The sections that compare across benchmarks, between methods and per dollar."""
    texts: list[str] = []
    paths: list[Path] = []
    benchmarks = sorted(analysis.references["benchmark"])
    if len(benchmarks) > 1 and not analysis.across.empty:
        texts.append("across benchmarks: normalized regret (0 = optimum, 1 = the worst final "
                     "result) and mean rank at % of the budget\n"
                     + format_checkpoints(analysis.checkpoints, analysis.references))
        paths.append(plot_across_benchmarks(analysis.across, benchmarks,
                                            out_dir / "across_benchmarks.png"))
    if analysis.experiments["method"].nunique() > 1:
        texts.append(format_pairs(analysis.pairs))
    experiments = analysis.experiments
    if not analysis.to_target.empty:
        metrics = experiments.groupby("benchmark")["metric"].first().astype(str).to_dict()
        texts.append(format_to_target(analysis.to_target, analysis.targets, metrics))
    targets = analysis.targets.set_index("benchmark")["target"]
    estimated = experiments.get("cost_estimated", pd.Series(False, index=experiments.index))
    for benchmark, exps in experiments.groupby("benchmark", sort=True):
        if (analysis.costs["benchmark"] == benchmark).any():
            to_target = analysis.to_target[analysis.to_target["benchmark"] == benchmark]
            paths.append(plot_best_per_dollar(
                analysis.costs, str(benchmark), str(exps["metric"].iloc[0]),
                str(exps["mode"].iloc[0]), out_dir / f"{benchmark}_cost.png",
                target=targets.get(benchmark),
                to_target=to_target.set_index("method")["median_usd"].to_dict(),
                estimated=bool(estimated[exps.index].astype(bool).all()),
            ))
    return texts, paths
