"""Plots across benchmarks (normalized regret and mean rank) and against dollars spent."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed on servers or in containers

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from stbench.analysis.plot import DPI, legend_corner, method_curve  # noqa: E402

WIDE_FIGSIZE = (11.0, 4.5)
COST_FIGSIZE = (7.0, 4.5)


@contextmanager
def _figure(path: Path, legend: str = "best") -> Iterator[plt.Axes]:
    """One panel, written to ``path`` (parents created) when the block ends, with a grid and
    the legend at ``legend``; the figure is closed however the block ends."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=COST_FIGSIZE, dpi=DPI)
    try:
        yield ax
        ax.grid(True, alpha=0.4)
        ax.legend(loc=legend, fontsize="small")
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)


def plot_across_benchmarks(across: pd.DataFrame, benchmarks: list[str], path: Path) -> Path:
    """Two panels over the fraction of the budget: normalized regret (mean ± s.e. over
    benchmarks) and mean rank, one line per method. ``across`` is
    :func:`stbench.analysis.regret.across_benchmarks` output."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (left, right) = plt.subplots(1, 2, figsize=WIDE_FIGSIZE, dpi=DPI)
    try:
        for method, group in across.groupby("method", sort=True):
            x = group["fraction"].to_numpy(float) * 100
            mean = group["normalized_regret"].to_numpy(float)
            (line,) = left.plot(x, mean, drawstyle="steps-post", lw=1.6, label=str(method))
            se = group["se"].fillna(0.0).to_numpy(float)
            left.fill_between(x, mean - se, mean + se, step="post", color=line.get_color(),
                              alpha=0.15)
            right.plot(x, group["mean_rank"].to_numpy(float), drawstyle="steps-post", lw=1.6,
                       color=line.get_color(), label=str(method))
        n_methods = across["method"].nunique()
        left.set_ylabel("normalized regret (0 = optimum, 1 = worst final)")
        left.set_ylim(bottom=0)
        _rank_axis(right, n_methods)
        for ax in (left, right):
            ax.set_xlabel("% of the time budget")
            ax.set_xlim(0, 100)
            ax.grid(True, alpha=0.4)
        left.set_title("normalized regret (mean ± s.e. over benchmarks)", fontsize="medium")
        right.set_title("rank among methods (mean over seeds, benchmarks)", fontsize="medium")
        right.legend(loc="best", fontsize="small")
        shown = ", ".join(benchmarks)
        fig.suptitle(f"{len(benchmarks)} benchmarks: {shown}", fontsize="medium")
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path


def plot_best_per_dollar(costs: pd.DataFrame, benchmark: str, metric: str, mode: str,
                         path: Path, target: float | None = None,
                         to_target: dict[str, float] | None = None,
                         estimated: bool = False) -> Path:
    """Best-so-far against dollars spent (mean ± s.e. over seeds), one line per method.

    ``costs`` is :func:`stbench.analysis.cost.cost_curves` output; other benchmarks' rows are
    ignored. Each line starts at the spend by which every seed has a value. ``target`` is
    drawn as a dashed line, and each method's median dollars to reach it (``to_target``,
    where finite) as a dotted line in its colour; ``estimated`` says so on the x axis.
    """
    path = Path(path)
    with _figure(path, legend=legend_corner(mode)) as ax:
        data = costs[costs["benchmark"] == benchmark]
        for method, group in data.groupby("method", sort=True):
            spent, mean, se, n = method_curve(group, x="cost_usd")
            if n == 0:
                continue
            (line,) = ax.plot(spent, mean, drawstyle="steps-post", lw=1.6, label=str(method))
            ax.fill_between(spent, mean - se, mean + se, step="post", color=line.get_color(),
                            alpha=0.2)
            reached = (to_target or {}).get(str(method), math.inf)
            if math.isfinite(reached):
                ax.axvline(reached, color=line.get_color(), ls=":", lw=1.2,
                           label=f"{method}: ${reached:.3g} to target (median)")
        if target is not None and math.isfinite(target):
            ax.axhline(target, color="0.3", ls="--", lw=1.0, label=f"target {target:.4g}")
        better = "lower" if mode == "min" else "higher"
        ax.set_title(f"{benchmark}: quality per dollar (mean ± 1 s.e. over seeds)")
        ax.set_xlabel("dollars spent on trials so far (USD"
                      + (", estimated)" if estimated else ")"))
        ax.set_ylabel(f"best {metric} so far ({better} is better)")
        ax.set_xlim(left=0)
    return path


def plot_rank_bands(bands: pd.DataFrame, n_benchmarks: int, path: Path) -> Path:
    """Mean rank over the fraction of the budget, one line per method, with its bootstrap
    band over seeds (``bootstrap.rank_bands`` output)."""
    path = Path(path)
    with _figure(path) as ax:
        for method, group in bands.groupby("method", sort=True):
            x = group["fraction"].to_numpy(float) * 100
            (line,) = ax.plot(x, group["mean_rank"].to_numpy(float), drawstyle="steps-post",
                              lw=1.6, label=str(method))
            ax.fill_between(x, group["rank_low"].to_numpy(float),
                            group["rank_high"].to_numpy(float), step="post",
                            color=line.get_color(), alpha=0.2)
        _rank_axis(ax, bands["method"].nunique())
        ax.set_xlim(0, 100)
        ax.set_xlabel("% of the time budget")
        where = f"{n_benchmarks} benchmark{'s' if n_benchmarks != 1 else ''}"
        ax.set_title(f"rank over time, mean over seeds and {where}\n"
                     "(band: 95 % bootstrap interval over seeds)", fontsize="medium")
    return path


def _rank_axis(ax: plt.Axes, n_methods: int) -> None:
    """A mean-rank y axis over all the methods' ranks, rank 1 (the best) at the top."""
    ax.set_ylabel(f"mean rank (1 = best of {n_methods})")
    ax.set_ylim(0.8, max(n_methods, 1) + 0.2)
    ax.invert_yaxis()
