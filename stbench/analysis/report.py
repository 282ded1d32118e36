"""One call from a results folder to what a person looks at: a table and one plot per benchmark,
and, where a tag holds several benchmarks, methods or costs, the comparisons across them.

The table comes first and fast (``report_parts`` yields it before anything else is computed);
matplotlib, scipy.stats and scikit-posthocs are imported only for what follows it."""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd

from stbench.analysis.bootstrap import final_regrets, format_pairs, paired_bootstrap, rank_bands
from stbench.analysis.cost import cost_curves, cost_targets, dollars_to_target, format_to_target
from stbench.analysis.critical_difference import (
    FILENAME,
    FriedmanNemenyi,
    final_regret_blocks,
    format_friedman,
    friedman_nemenyi,
    why_not_drawn,
)
from stbench.analysis.frame import load
from stbench.analysis.regret import (
    across_benchmarks,
    benchmark_references,
    checkpoint_table,
    format_checkpoints,
    regret_over_time,
)
from stbench.analysis.summary import best_so_far, experiment_costs, final_table, format_table

PlotJob = tuple[Path, Callable[[], Path]]  # a PNG's path and the call that draws it there


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
    bands: pd.DataFrame  # mean rank over the budget with bootstrap bands (bootstrap.py)
    blocks: pd.DataFrame  # benchmarks x methods: final normalized regret (critical_difference)


def analyze(root: Path, experiment_tag: str) -> Analysis:
    """Load a tag's results and compute every frame of the report (no files written)."""
    df, experiments = load(Path(root), experiment_tag)
    curves = best_so_far(df)
    return _analyze(df, experiments, curves, final_table(df, experiments, curves))


def _analyze(df: pd.DataFrame, experiments: pd.DataFrame, curves: pd.DataFrame,
             table: pd.DataFrame) -> Analysis:
    references = benchmark_references(curves, experiments)
    regret = regret_over_time(curves, experiments)
    across = across_benchmarks(regret)
    costs = cost_curves(df)
    targets = cost_targets(curves, references)
    finals = final_regrets(regret)
    return Analysis(
        results=df,
        experiments=experiments,
        table=table,
        curves=curves,
        references=references,
        regret=regret,
        across=across,
        checkpoints=checkpoint_table(across),
        pairs=paired_bootstrap(finals),
        costs=costs,
        targets=targets,
        to_target=dollars_to_target(costs, experiment_costs(df), references, targets,
                                    experiments),
        bands=rank_bands(regret),
        blocks=final_regret_blocks(finals),
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


def report_parts(root: Path, experiment_tag: str, out_dir: Path | None = None,
                 csv: Path | None = None) -> Iterator[str | Path]:
    """The report piece by piece, so that a terminal shows the table at once: texts (str)
    in the order they are printed, then each PNG (Path) once written.

    First a status line and the table; with ``csv``, the results frame (one row per report)
    is written there and a line says so; then the comparisons (see ``report``) and the plots.
    PNGs go to ``out_dir``, by default ``<root>/<experiment_tag>/plots/``. Raises
    ``UserError`` if the tag has no results.
    """
    root = Path(root)
    out_dir = Path(out_dir) if out_dir is not None else root / experiment_tag / "plots"
    df, experiments = load(root, experiment_tag)
    curves = best_so_far(df)
    table = final_table(df, experiments, curves)
    yield f"{_status_line(experiment_tag, experiments)}\n\n{format_table(table)}"
    if csv is not None:
        df.to_csv(csv, index=False)
        yield f"csv: {csv} ({len(df)} rows, one per report; its columns: docs/results.md)"
    analysis = _analyze(df, experiments, curves, table)
    friedman = None
    if analysis.experiments["method"].nunique() > 1:
        line = why_not_drawn(analysis.blocks, analysis.experiments["benchmark"].nunique(),
                             analysis.experiments["method"].nunique())
        if line is None:
            friedman = friedman_nemenyi(analysis.blocks)
            line = format_friedman(friedman)
        yield line
    yield from _comparison_texts(analysis)
    yield from draw_in_two_processes(_plot_jobs(analysis, out_dir, friedman))


def report(root: Path, experiment_tag: str, out_dir: Path | None = None) -> tuple[str, list[Path]]:
    """Build the summary text and write ``<benchmark>.png`` per benchmark.

    PNGs go to ``out_dir``, by default ``<root>/<experiment_tag>/plots/``. Returns the text
    (a status line, a blank line, then the table) and the PNG paths. With several methods the
    text adds the critical-difference line (``critical_difference.png`` from 3 benchmarks
    and 3 methods on), paired bootstrap verdicts and ``rank_over_time.png``; with several
    benchmarks, normalized regret and mean rank at 25/50/100 % of the budget (and
    ``across_benchmarks.png``); with costs, the trial dollars each method spent until it
    reached a target and ``<benchmark>_cost.png``. Raises ``UserError`` if the tag has no
    results.
    """
    parts = list(report_parts(root, experiment_tag, out_dir))
    text = "\n\n".join(part for part in parts if isinstance(part, str))
    return text, [part for part in parts if isinstance(part, Path)]


def _comparison_texts(analysis: Analysis) -> Iterator[str]:
    """The sections that compare across benchmarks, between methods and per dollar."""
    if len(analysis.references) > 1 and not analysis.across.empty:
        yield ("across benchmarks: normalized regret (0 = optimum, 1 = the worst final "
               "result) and mean rank at % of the budget\n"
               + format_checkpoints(analysis.checkpoints, analysis.references))
    if analysis.experiments["method"].nunique() > 1:
        yield format_pairs(analysis.pairs)
    if not analysis.to_target.empty:
        metrics = analysis.experiments.groupby("benchmark")["metric"].first().astype(str)
        yield format_to_target(analysis.to_target, analysis.targets, metrics.to_dict())


def _plot_jobs(analysis: Analysis, out_dir: Path, friedman: FriedmanNemenyi | None
               ) -> list[PlotJob]:
    """Each PNG's path and the call that draws it there, in the order they are listed: per
    benchmark, then across them, then costs."""
    from stbench.analysis.critical_difference import plot_critical_difference
    from stbench.analysis.plot import plot_best_so_far, time_label
    from stbench.analysis.plot_across import (
        plot_across_benchmarks,
        plot_best_per_dollar,
        plot_rank_bands,
    )

    experiments, curves = analysis.experiments, analysis.curves
    by_benchmark = list(experiments.groupby("benchmark", sort=True))
    jobs: list[PlotJob] = []
    for benchmark, exps in by_benchmark:
        path = out_dir / f"{benchmark}.png"
        jobs.append((path, partial(
            plot_best_so_far, curves, benchmark=str(benchmark),
            metric=str(exps["metric"].iloc[0]), mode=str(exps["mode"].iloc[0]),
            path=path, x_label=time_label(set(exps["backend"])),
        )))
    benchmarks = sorted(analysis.references["benchmark"])
    if len(benchmarks) > 1 and not analysis.across.empty:
        path = out_dir / "across_benchmarks.png"
        jobs.append((path, partial(plot_across_benchmarks, analysis.across, benchmarks, path)))
    if experiments["method"].nunique() > 1 and not analysis.bands.empty:
        path = out_dir / "rank_over_time.png"
        jobs.append((path, partial(plot_rank_bands, analysis.bands, len(benchmarks), path)))
    if friedman is not None:
        path = out_dir / FILENAME
        jobs.append((path, partial(plot_critical_difference, friedman, path)))
    targets = analysis.targets.set_index("benchmark")["target"]
    estimated = experiments.get("cost_estimated", pd.Series(False, index=experiments.index))
    for benchmark, exps in by_benchmark:
        if (analysis.costs["benchmark"] == benchmark).any():
            to_target = analysis.to_target[analysis.to_target["benchmark"] == benchmark]
            path = out_dir / f"{benchmark}_cost.png"
            jobs.append((path, partial(
                plot_best_per_dollar, analysis.costs, str(benchmark),
                str(exps["metric"].iloc[0]), str(exps["mode"].iloc[0]),
                path, target=targets.get(benchmark),
                to_target=to_target.set_index("method")["median_usd"].to_dict(),
                estimated=bool(estimated[exps.index].astype(bool).all()),
            )))
    return jobs


def draw_in_two_processes(jobs: list[PlotJob]) -> Iterator[Path]:
    """Run the drawing calls, yielding each PNG in order: on Linux with two or more cores a
    forked child draws the second half while this process draws the first, since matplotlib
    holds one core for seconds on a large tag. A child that fails leaves its half to this
    process, so the PNGs are the same either way; elsewhere (macOS's fork is unsafe once
    system frameworks are loaded) every call runs here."""
    split = len(jobs) // 2
    child = 0
    if split and sys.platform == "linux" and (os.cpu_count() or 1) > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        child = os.fork()
        if child == 0:  # pragma: no cover - the child's exit status is what counts
            code = 1
            try:
                for _, draw in jobs[split:]:
                    draw()
                code = 0
            finally:
                os._exit(code)
    if not child:
        yield from (draw() for _, draw in jobs)
        return
    yield from (draw() for _, draw in jobs[:split])
    _, status = os.waitpid(child, 0)
    drawn = os.waitstatus_to_exitcode(status) == 0
    yield from (path if drawn else draw() for path, draw in jobs[split:])
