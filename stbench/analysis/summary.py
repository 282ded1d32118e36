"""Turn report rows into best-so-far curves and a per-method comparison table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from stbench.analysis.frame import metric_column
from stbench.model.errors import UserError

GROUP = ["benchmark", "method", "seed"]
CURVE_COLUMNS = [*GROUP, "wallclock_time", "best"]
TABLE_COLUMNS = [
    "benchmark",
    "method",
    "metric",
    "mode",
    "n_seeds",
    "missing",
    "mean",
    "se",
    "iqm",
    "trials",
    "cost_usd",
    "cost_estimated",
    "orchestrator_usd",
    "orchestrator_state",
    "rank",
]
# an orchestrator cell's state over seeds: the first of these that any seed has
_STATES = ("unpriced", "running", "billed")


def best_so_far(df: pd.DataFrame) -> pd.DataFrame:
    """Running best of each experiment's own metric, so curves show progress, not noise.

    Reports whose metric is missing, non-numeric or non-finite are ignored; an experiment
    with no usable report contributes no rows. ``df`` is in ``frame.load_results`` order
    (by experiment, then time); the running best is one grouped pass over all experiments.
    """
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype=_curve_dtype(c)) for c in CURVE_COLUMNS})
    value = metric_values(df)
    times = pd.to_numeric(df["wallclock_time"], errors="coerce").astype(float)
    usable = np.isfinite(value.to_numpy(float)) & np.isfinite(times.to_numpy(float))
    sub = df.loc[usable, GROUP].assign(wallclock_time=times[usable])
    sub = sub.sort_values([*GROUP, "wallclock_time"], kind="stable")
    sub["best"] = running_best(value[sub.index], df.loc[sub.index, "mode"],
                               [sub[c] for c in GROUP]).to_numpy()
    return sub[CURVE_COLUMNS].reset_index(drop=True)


def metric_values(df: pd.DataFrame) -> pd.Series:
    """Each report's value of its experiment's own metric, NaN where missing, non-numeric
    or non-finite."""
    value = pd.Series(np.nan, index=df.index)
    for metric, rows in df.groupby("metric", sort=False).groups.items():
        column = metric_column(str(metric))
        if column in df.columns:
            value[rows] = pd.to_numeric(df.loc[rows, column], errors="coerce").astype(float)
    return value.where(np.isfinite(value.to_numpy(float)))


def running_best(value: pd.Series, mode: pd.Series, by: list[pd.Series]) -> pd.Series:
    """Best so far within each group of ``by``, in row order (NaN rows stay NaN): a running
    minimum of the value as "lower is better" (max mode negated), turned back."""
    sign = np.where(mode.to_numpy() == "min", 1.0, -1.0)
    signed = pd.Series(sign * value.to_numpy(float), index=value.index)
    return signed.groupby(by, sort=False).cummin() * sign


def interquartile_mean(values: np.ndarray) -> float:
    """Mean of the middle half: ``int(n / 4)`` values cut from each end (as
    ``scipy.stats.trim_mean(values, 0.25)``, without importing scipy.stats for a table)."""
    ordered = np.sort(np.asarray(values, dtype=float))
    cut = int(0.25 * len(ordered))
    return float(ordered[cut:len(ordered) - cut].mean())


def _curve_dtype(column: str) -> str:
    return {"seed": "int64", "wallclock_time": "float64", "best": "float64"}.get(column, "object")


def experiment_costs(df: pd.DataFrame) -> pd.Series:
    """USD per experiment: the sum over its trials of each trial's ``cost_usd``.

    Every report row of a trial carries the trial's cost so far, so a trial counts once,
    with its largest value. Experiments without any cost value are absent (not 0: a local
    run is not free, it is unpriced).
    """
    if "cost_usd" not in df.columns or not len(df):
        return pd.Series(dtype=float)
    costs = df[[*GROUP, "trial_id"]].assign(cost=pd.to_numeric(df["cost_usd"], errors="coerce"))
    costs = costs[np.isfinite(costs["cost"].astype(float))]
    per_trial = costs.groupby([*GROUP, "trial_id"], sort=True)["cost"].max()
    return per_trial.groupby(level=GROUP, sort=True).sum().astype(float)


def final_table(df: pd.DataFrame, experiments: pd.DataFrame,
                curves: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per (benchmark, method): how good the final best is across seeds, and the rank.

    ``n_seeds`` counts experiments with at least one usable report; ``missing`` counts the
    rest (no report yet, or no numeric value of the metric). ``se`` is NaN for one seed.
    ``iqm`` is ``interquartile_mean``. ``cost_usd`` is the mean over seeds of
    each experiment's trial cost (see ``experiment_costs``; NaN when no seed has one),
    ``cost_estimated`` whether a seed's was estimated (local or simulated seconds priced as
    SageMaker's). ``orchestrator_usd`` is the mean over seeds of a launched study's
    orchestrator jobs' cost, ``orchestrator_state`` "" (none), "billed", "running" (so far)
    or "unpriced" (then NaN). ``rank`` is 1 for the best mean within the benchmark (ties
    share the average rank; methods without results get NaN). ``curves``: ``best_so_far(df)``
    where the caller has it already.
    """
    curves = best_so_far(df) if curves is None else curves
    finals = curves.groupby(GROUP, sort=True)["best"].last()
    trials = df.groupby(GROUP, sort=True)["trial_id"].nunique() if len(df) else pd.Series()
    costs = experiment_costs(df)
    rows = []
    for (benchmark, method), exps in experiments.groupby(["benchmark", "method"], sort=True):
        keys = [(benchmark, method, int(s)) for s in exps["seed"]]
        values = np.array([finals[k] for k in keys if k in finals.index], dtype=float)
        n = len(values)
        priced = [costs[k] for k in keys if k in costs.index]
        estimated = exps.get("cost_estimated", pd.Series(False, index=exps.index))
        states = set(exps.get("orchestrator_state", pd.Series("", index=exps.index)))
        state = next((s for s in _STATES if s in states), "")
        orchestrator = pd.to_numeric(exps.get("orchestrator_cost_usd"), errors="coerce")
        rows.append(
            {
                "benchmark": benchmark,
                "method": method,
                "metric": exps["metric"].iloc[0],
                "mode": exps["mode"].iloc[0],
                "n_seeds": n,
                "missing": len(keys) - n,
                "mean": float(values.mean()) if n else math.nan,
                "se": float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan,
                "iqm": interquartile_mean(values) if n else math.nan,
                "trials": (
                    float(np.mean([trials[k] for k in keys if k in finals.index]))
                    if n
                    else math.nan
                ),
                "cost_usd": float(np.mean(priced)) if priced else math.nan,
                "cost_estimated": bool(estimated.astype(bool).any()),
                "orchestrator_usd": (float(orchestrator.mean()) if state in ("billed", "running")
                                     else math.nan),
                "orchestrator_state": state,
            }
        )
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS[:-1])
    table["rank"] = pd.Series(dtype=float)
    for benchmark, group in table.groupby("benchmark"):
        modes = set(experiments.loc[experiments["benchmark"] == benchmark, "mode"])
        if len(modes) > 1:
            raise UserError(
                f"benchmark '{benchmark}' mixes modes {sorted(modes)}; "
                "rerun its experiments with a single metric mode"
            )
        ascending = modes.pop() == "min"
        table.loc[group.index, "rank"] = group["mean"].rank(ascending=ascending, method="average")
    return table


def _num(value: float) -> str:
    """Four significant digits, or n/a, so columns stay short and comparable."""
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4g}"


def usd_text(value: float) -> str:
    """Cents for real money, a few digits for the fractions of a cent short trials cost."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:,.2f}" if value >= 1 else f"{value:.3g}"


def format_table(table: pd.DataFrame) -> str:
    """Aligned plain text for a terminal, sorted by benchmark then rank (best first).

    The ``trials $`` column appears only when some method has a trial cost, labelled
    "(estimated)" when every priced method's is (a mix marks the estimated cells with ``*``);
    ``orchestrator $`` only for a launched study. Unpriced local runs read as before.
    """
    if table.empty:
        return "no experiments"
    ordered = table.sort_values(["benchmark", "rank", "method"], na_position="last")
    costs = pd.to_numeric(table.get("cost_usd", pd.Series(dtype=float)), errors="coerce")
    priced = np.isfinite(costs.astype(float))
    show_cost = bool(priced.any())
    estimated = table.get("cost_estimated", pd.Series(False, index=table.index)).astype(bool)
    all_estimated = show_cost and bool(estimated[priced].all())
    mark = "*" if show_cost and not all_estimated and bool(estimated[priced].any()) else ""
    show_orchestrator = bool((table.get("orchestrator_state", pd.Series(dtype=str))
                              .fillna("") != "").any())
    header = ["benchmark", "metric", "method", "seeds", "best mean ± se", "IQM", "trials"]
    if show_cost:
        header.append("trials $ (estimated)" if all_estimated else "trials $")
    if show_orchestrator:
        header.append("orchestrator $")
    header.append("rank")
    lines = [header]
    for row in ordered.itertuples(index=False):
        seeds = str(row.n_seeds) + (f" ({row.missing} missing)" if row.missing else "")
        best = f"{_num(row.mean)} ± {_num(row.se)}" if math.isfinite(row.mean) else "n/a"
        rank = "n/a" if not math.isfinite(row.rank) else f"{row.rank:g}"
        line = [
            str(row.benchmark),
            f"{row.metric} ({row.mode})",
            str(row.method),
            seeds,
            best,
            _num(row.iqm),
            _num(row.trials),
        ]
        if show_cost:
            starred = row.cost_estimated and math.isfinite(row.cost_usd)
            line.append(usd_text(row.cost_usd) + (mark if starred else " " * len(mark)))
        if show_orchestrator:
            line.append(_orchestrator_cell(row.orchestrator_usd, row.orchestrator_state))
        lines.append([*line, rank])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    left = 3  # benchmark, metric and method read better left-aligned; numbers right-aligned
    out = []
    for i, line in enumerate(lines):
        cells = [
            cell.ljust(width) if j < left else cell.rjust(width)
            for j, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    if mark:
        out.append("* estimated: local or simulated seconds at the benchmark's SageMaker price")
    if show_orchestrator and (table["orchestrator_state"] == "unpriced").any():
        out.append("?: an orchestrator job's instance type has no price in the price table "
                   "(STBENCH_PRICES)")
    return "\n".join(out)


def _orchestrator_cell(usd: float, state: str) -> str:
    """A launched study's orchestrator jobs: "-" for none, "?" unpriced, "so far" running."""
    if state == "unpriced":
        return "?"
    if state not in ("billed", "running"):
        return "-"
    return usd_text(usd) + (" so far" if state == "running" else "")
