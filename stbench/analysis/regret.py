"""Across benchmarks: normalized regret and mean rank over the fraction of each budget.

Benchmarks have different metrics, scales and budgets, so each best-so-far curve is put on a
common footing before averaging:

- time is the fraction of the experiment's budget (``max_wallclock_time``), sampled on a grid;
- regret is how far the best so far is from the benchmark's optimum, in the direction of its
  mode; the optimum is the YAML's ``optimum`` when known, else the best value any method
  observed on that benchmark (then regret is relative to the field, not to the truth);
- normalized regret divides by the regret of a *reference*, the worst final best-so-far of
  any experiment of the benchmark, so final values span [0, 1] on every benchmark whatever its
  scale (a first report's regret can be a hundred times a final one's, so it would squash the
  differences that matter); values are clipped to [0, 1]: 1 is "no better than the worst
  final result" (and any time before the first report), 0 is "at the optimum" (noisy reports
  can dip below an exact optimum; they count as 0);
- rank is taken per (benchmark, seed, time) among the methods, on unclipped regret (ties share
  the average rank), then averaged over seeds and benchmarks.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

GRID_POINTS = 40
CHECKPOINTS = (0.25, 0.5, 1.0)
BENCHMARK_COLUMNS = ["benchmark", "mode", "optimum", "optimum_known", "reference", "budget"]
REGRET_COLUMNS = [
    "benchmark", "method", "seed", "fraction", "best", "regret", "normalized_regret", "rank",
]
ACROSS_COLUMNS = ["method", "fraction", "normalized_regret", "se", "mean_rank", "n_benchmarks"]


def benchmark_references(curves: pd.DataFrame, experiments: pd.DataFrame) -> pd.DataFrame:
    """Per benchmark: its mode, optimum (known or best observed), reference and budget.

    ``curves`` is :func:`stbench.analysis.summary.best_so_far` output. The budget is the
    largest ``budget_seconds`` of its experiments, else the last report's time.
    """
    rows = []
    for benchmark, exps in experiments.groupby("benchmark", sort=True):
        mode = str(exps["mode"].iloc[0])
        data = curves[curves["benchmark"] == benchmark]
        known = pd.to_numeric(exps.get("optimum"), errors="coerce").dropna()
        if len(known):
            optimum = float(known.iloc[0])
        elif len(data):
            optimum = float(data["best"].min() if mode == "min" else data["best"].max())
        else:
            optimum = math.nan
        finals = data.groupby(["method", "seed"], sort=True)["best"].last()
        budgets = pd.to_numeric(exps.get("budget_seconds"), errors="coerce").dropna()
        budget = float(budgets.max()) if len(budgets) else float(data["wallclock_time"].max())
        rows.append({
            "benchmark": benchmark,
            "mode": mode,
            "optimum": optimum,
            "optimum_known": bool(len(known)),
            "reference": (float(finals.max() if mode == "min" else finals.min())
                          if len(finals) else math.nan),
            "budget": budget if math.isfinite(budget) and budget > 0 else math.nan,
        })
    return pd.DataFrame(rows, columns=BENCHMARK_COLUMNS)


def regret_over_time(
    curves: pd.DataFrame, experiments: pd.DataFrame, grid_points: int = GRID_POINTS
) -> pd.DataFrame:
    """One row per (benchmark, method, seed, fraction of budget) on a common grid.

    ``best`` is NaN before the experiment's first report (then ``regret`` is NaN and
    ``normalized_regret`` is 1). Columns: see ``REGRET_COLUMNS``.
    """
    fractions = np.arange(1, grid_points + 1) / grid_points
    parts: list[pd.DataFrame] = []
    for ref in benchmark_references(curves, experiments).itertuples(index=False):
        if not math.isfinite(ref.budget):
            continue
        exps = experiments[experiments["benchmark"] == ref.benchmark]
        data = curves[curves["benchmark"] == ref.benchmark]
        by_experiment = dict(iter(data.groupby(["method", "seed"], sort=False)))
        for (method, seed), _ in exps.groupby(["method", "seed"], sort=True):
            own = by_experiment.get((method, seed), data.iloc[:0])
            best = step_values(own["wallclock_time"].to_numpy(float),
                               own["best"].to_numpy(float), fractions * ref.budget)
            parts.append(pd.DataFrame({
                "benchmark": ref.benchmark,
                "method": method,
                "seed": int(seed),
                "fraction": fractions,
                "best": best,
                "regret": _sign(ref.mode) * (best - ref.optimum),
                "normalized_regret": normalized_regret(best, ref),
            }))
    if not parts:
        return pd.DataFrame(columns=REGRET_COLUMNS)
    frame = pd.concat(parts, ignore_index=True)
    ranking = frame.assign(key=frame["regret"].fillna(np.inf))
    frame["rank"] = ranking.groupby(["benchmark", "seed", "fraction"])["key"].rank(
        method="average"
    )
    return frame[REGRET_COLUMNS]


def _sign(mode: str) -> float:
    return 1.0 if mode == "min" else -1.0


def normalized_regret(best: np.ndarray, ref: Any) -> np.ndarray:
    """Best-so-far values as normalized regret against a row of ``benchmark_references``
    (module doc): clipped to [0, 1], 1 where there is no value yet. Where the reference is
    no worse than the optimum (every final at the optimum), any regret counts as 1."""
    sign = _sign(ref.mode)
    regret = sign * (np.asarray(best, dtype=float) - ref.optimum)
    scale = sign * (ref.reference - ref.optimum)
    normalized = regret / scale if scale > 0 else np.where(regret <= 0, 0.0, 1.0)
    return np.clip(np.nan_to_num(normalized, nan=1.0), 0.0, 1.0)


def regret_threshold(ref: Any, level: float) -> float:
    """The metric value whose normalized regret is ``level`` (the inverse of the above)."""
    sign = _sign(ref.mode)
    return float(ref.optimum + sign * level * max(sign * (ref.reference - ref.optimum), 0.0))


def step_values(times: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Value of the step function (times, values) at each of ``at``; NaN before the first."""
    if times.size == 0:
        return np.full(at.shape, np.nan)
    index = np.searchsorted(times, at, side="right") - 1
    return np.where(index >= 0, values[np.clip(index, 0, None)], np.nan)


def across_benchmarks(regret: pd.DataFrame) -> pd.DataFrame:
    """Per (method, fraction): normalized regret and rank, averaged over seeds, then benchmarks.

    Each benchmark weighs the same however many seeds it has; ``se`` is the standard error over
    benchmarks (NaN for one), ``n_benchmarks`` how many benchmarks the method ran on.
    """
    if regret.empty:
        return pd.DataFrame(columns=ACROSS_COLUMNS)
    per_benchmark = regret.groupby(["method", "fraction", "benchmark"], sort=True)[
        ["normalized_regret", "rank"]
    ].mean()
    grouped = per_benchmark.groupby(level=["method", "fraction"], sort=True)
    out = pd.DataFrame({
        "normalized_regret": grouped["normalized_regret"].mean(),
        "se": grouped["normalized_regret"].sem(),
        "mean_rank": grouped["rank"].mean(),
        "n_benchmarks": grouped["rank"].size(),
    }).reset_index()
    return out[ACROSS_COLUMNS]


def checkpoint_table(across: pd.DataFrame, checkpoints: tuple[float, ...] = CHECKPOINTS
                     ) -> pd.DataFrame:
    """Normalized regret and mean rank at fractions of the budget, one row per method.

    Each checkpoint reads the last grid point at or before it. Sorted by final mean rank.
    """
    rows = []
    for method, group in across.groupby("method", sort=True):
        row: dict[str, object] = {"method": method,
                                  "n_benchmarks": int(group["n_benchmarks"].max())}
        for point in checkpoints:
            at = group[group["fraction"] <= point + 1e-9]
            label = f"{point:.0%}"
            row[f"regret@{label}"] = at["normalized_regret"].iloc[-1] if len(at) else math.nan
            row[f"rank@{label}"] = at["mean_rank"].iloc[-1] if len(at) else math.nan
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    final = f"rank@{checkpoints[-1]:.0%}"
    return table.sort_values([final, "method"], kind="stable").reset_index(drop=True)


def format_checkpoints(table: pd.DataFrame, references: pd.DataFrame) -> str:
    """Plain text: what the optimum of each benchmark is, then the checkpoint table."""
    lines = []
    for ref in references.itertuples(index=False):
        source = "known" if ref.optimum_known else "best observed"
        lines.append(f"  {ref.benchmark}: optimum {ref.optimum:.6g} ({source}), "
                     f"reference (worst final best) {ref.reference:.6g}")
    header = ["method", "benchmarks", *[c for c in table.columns if "@" in c]]
    cells = [header]
    for row in table.itertuples(index=False):
        values = row._asdict()
        cells.append([str(values["method"]), str(values["n_benchmarks"]), *[
            f"{v:.3f}" if math.isfinite(v) else "n/a"
            for k, v in zip(table.columns, row, strict=True) if "@" in k
        ]])
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    for i, line in enumerate(cells):
        lines.append("  ".join(
            c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(line, widths,
                                                                                 strict=True))
        ).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
