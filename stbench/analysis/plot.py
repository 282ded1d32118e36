"""Best-so-far plots: one PNG per benchmark, one line per method (mean ± se over seeds)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed on servers or in containers

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from stbench.model.backend_names import SIMULATED  # noqa: E402

FIGSIZE = (7.0, 4.5)
DPI = 120
LOG_DECADES = 1.5
MAX_POINTS = 600  # per line: about one per pixel of the figure's width


def method_curve(
    curves: pd.DataFrame, x: str = "wallclock_time"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Mean and standard error over seeds on a common time grid, for one method.

    Each seed is a step function: at time t its value is its best so far at t. The line
    starts at the first time *every* seed has a value, so the mean is always over the same
    seeds and does not jump when a late seed joins. Returns (times, mean, se, n_seeds); se
    is zero for a single seed. ``x`` names the column the steps are in (time, or dollars).
    More than ``MAX_POINTS`` steps are read on as many evenly spaced points instead (at most
    1/``MAX_POINTS`` of the axis off, below a pixel; 60k steps take seconds to draw).
    """
    seeds = [
        (g[x].to_numpy(float), g["best"].to_numpy(float))
        for _, g in curves.sort_values(x, kind="stable").groupby("seed")
    ]
    if not seeds:
        empty = np.array([], dtype=float)
        return empty, empty, empty, 0
    start = max(times[0] for times, _ in seeds)
    grid = np.unique(np.concatenate([times for times, _ in seeds]))
    grid = grid[grid >= start]
    if len(grid) > MAX_POINTS:  # finer than the figure's pixels: costs drawing time only
        grid = np.linspace(grid[0], grid[-1], MAX_POINTS)
    values = np.vstack(
        [best[np.searchsorted(times, grid, side="right") - 1] for times, best in seeds]
    )
    n = len(seeds)
    mean = values.mean(axis=0)
    se = values.std(axis=0, ddof=1) / math.sqrt(n) if n > 1 else np.zeros_like(mean)
    return grid, mean, se, n


def use_log_scale(values: np.ndarray) -> bool:
    """Log y only where it helps: all positive and spanning more than 1.5 decades."""
    values = values[np.isfinite(values)]
    if values.size == 0 or values.min() <= 0:
        return False
    return math.log10(values.max() / values.min()) > LOG_DECADES


def time_label(backends: set[str]) -> str:
    """The x axis of a plot over ``wallclock_time``: simulated seconds where the simulated
    back-end ran the experiments, else real ones."""
    if backends == {SIMULATED}:
        return "simulated time (s)"
    if SIMULATED in backends:
        return "time (s; wallclock, simulated for the simulated back-end)"
    return "wallclock time (s)"


def legend_corner(mode: str) -> str:
    """Where best-so-far curves leave room: they fall (min) or rise (max) over time, so the
    late corner away from them is free. Fixed rather than matplotlib's "best", whose search
    over every drawn point took a tenth of the plotting time."""
    return "upper right" if mode == "min" else "lower right"


def plot_best_so_far(
    curves: pd.DataFrame, benchmark: str, metric: str, mode: str, path: Path,
    x_label: str = "wallclock time (s)",
) -> Path:
    """Write the benchmark's best-so-far PNG to ``path`` (parents created) and return it.

    ``curves`` is :func:`stbench.analysis.summary.best_so_far` output; rows of other
    benchmarks are ignored. A benchmark without reports gets a figure saying so, so that
    every benchmark has a plot. ``x_label``: see ``time_label``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = curves[curves["benchmark"] == benchmark]
    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI)
    try:
        seed_counts: list[int] = []
        for method, group in data.groupby("method", sort=True):
            times, mean, se, n = method_curve(group)
            if n == 0:
                continue
            seed_counts.append(n)
            (line,) = ax.plot(times, mean, drawstyle="steps-post", label=str(method), lw=1.6)
            if n > 1:
                ax.fill_between(
                    times, mean - se, mean + se, step="post", color=line.get_color(), alpha=0.2
                )
        if seed_counts:
            low, high = min(seed_counts), max(seed_counts)
            seeds = f"{low} seed{'s' if low != 1 else ''}" if low == high else f"{low}–{high} seeds"
            ax.set_title(f"{benchmark} ({seeds}, mean ± 1 s.e.)")
            if use_log_scale(data["best"].to_numpy(float)):
                ax.set_yscale("log")
            ax.legend(loc=legend_corner(mode), fontsize="small")
        else:
            ax.set_title(f"{benchmark} (no results yet)")
            ax.text(0.5, 0.5, "no reports yet", ha="center", va="center", transform=ax.transAxes)
        better = "lower" if mode == "min" else "higher"
        ax.set_xlabel(x_label)
        ax.set_ylabel(f"best {metric} so far ({better} is better)")
        ax.grid(True, which="major", alpha=0.4)
        ax.set_xlim(left=0)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path
