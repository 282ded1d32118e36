"""Best-so-far against dollars spent, for studies whose rows carry ``cost_usd``, and the
dollars each method spent until it first reached a target."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from stbench.analysis.regret import normalized_regret, regret_threshold
from stbench.analysis.summary import GROUP, metric_values, running_best, usd_text

COST_COLUMNS = [*GROUP, "wallclock_time", "cost_usd", "best"]


def cost_curves(df: pd.DataFrame) -> pd.DataFrame:
    """Per experiment and report: dollars spent so far and the best metric so far.

    Each row carries its trial's cost so far, so the money spent at a report is the sum over
    trials of each trial's latest cost at or before it (a trial not yet priced counts 0).
    Experiments without any cost value are left out: an unpriced run is not free.
    """
    if "cost_usd" not in df.columns or df.empty:
        return pd.DataFrame(columns=COST_COLUMNS)
    data = df.sort_values([*GROUP, "wallclock_time"], kind="stable")  # one pass, all groups
    experiment = data.groupby(GROUP, sort=False).ngroup()
    cost = pd.to_numeric(data["cost_usd"], errors="coerce").astype(float)
    priced = pd.Series(np.isfinite(cost.to_numpy()), index=data.index)
    priced = priced.groupby(experiment).transform("any")
    trial = [experiment, data["trial_id"]]
    latest = cost.groupby(trial).cummax().groupby(trial).ffill()
    increments = latest.fillna(0.0).groupby(trial).diff().fillna(latest.fillna(0))
    spent = increments.groupby(experiment).cumsum()
    best = running_best(metric_values(data), data["mode"], [experiment])
    usable = (priced & best.notna()).to_numpy()
    if not usable.any():
        return pd.DataFrame(columns=COST_COLUMNS)
    out = data.loc[usable, GROUP].assign(
        wallclock_time=data["wallclock_time"][usable].to_numpy(float),
        cost_usd=spent[usable].to_numpy(float), best=best[usable].to_numpy(float))
    return out[COST_COLUMNS].reset_index(drop=True)


TARGET_REGRET = 0.05  # normalized regret (regret.py) a method must reach, optimum known
TARGET_COLUMNS = ["benchmark", "mode", "target", "how"]
TO_TARGET_COLUMNS = ["benchmark", "method", "median_usd", "reached", "seeds", "estimated"]


def cost_targets(curves: pd.DataFrame, references: pd.DataFrame) -> pd.DataFrame:
    """Per benchmark: the best-so-far value that counts as reaching the target, and why.

    With a known optimum: normalized regret ``TARGET_REGRET`` (regret.py, against the worst
    final best); else the median over methods of their final best (mean over seeds), which
    about half of them reach. ``curves`` is ``summary.best_so_far`` output, ``references``
    ``regret.benchmark_references``.
    """
    rows = []
    for ref in references.itertuples(index=False):
        if ref.optimum_known:
            target = regret_threshold(ref, TARGET_REGRET)
            how = (f"normalized regret {TARGET_REGRET:g}: known optimum {ref.optimum:.6g}, "
                   f"worst final best {ref.reference:.6g}")
        else:
            data = curves[curves["benchmark"] == ref.benchmark]
            finals = data.groupby(["method", "seed"], sort=True)["best"].last()
            per_method = finals.groupby(level="method").mean()
            if per_method.empty:
                continue
            target = float(per_method.median())
            how = (f"median of the {len(per_method)} methods' final best (mean over seeds); "
                   "no known optimum")
        rows.append({"benchmark": ref.benchmark, "mode": ref.mode, "target": target,
                     "how": how})
    return pd.DataFrame(rows, columns=TARGET_COLUMNS)


def dollars_to_target(costs: pd.DataFrame, priced: pd.Series, references: pd.DataFrame,
                      targets: pd.DataFrame, experiments: pd.DataFrame) -> pd.DataFrame:
    """Per benchmark and method: the median over priced seeds of the trial dollars spent
    until best so far first reached the target (a seed that never did counts as infinite,
    so the median is inf when half or more did not), and how many seeds reached it.

    ``costs`` is ``cost_curves`` output, ``priced`` ``summary.experiment_costs`` (which
    experiments have a cost); ``experiments`` (frame.load_experiments) says which costs
    are estimated.
    """
    refs = {ref.benchmark: ref for ref in references.itertuples(index=False)}
    goals = {row.benchmark: row for row in targets.itertuples(index=False)}
    spent: dict[tuple, list[float]] = {}
    by_experiment = dict(iter(costs.groupby(GROUP, sort=False)))
    for benchmark, method, seed in priced.index:
        if benchmark not in goals:
            continue
        own = by_experiment.get((benchmark, method, seed), costs.iloc[:0])
        best = own["best"].to_numpy(float)
        goal = goals[benchmark]
        if refs[benchmark].optimum_known:  # the same normalized regret as regret.py's
            reached = normalized_regret(best, refs[benchmark]) <= TARGET_REGRET + 1e-12
        else:
            reached = best <= goal.target if goal.mode == "min" else best >= goal.target
        first = np.flatnonzero(reached)
        usd = float(own["cost_usd"].to_numpy(float)[first[0]]) if first.size else math.inf
        spent.setdefault((benchmark, method), []).append(usd)
    flags = experiments.get("cost_estimated", pd.Series(False, index=experiments.index))
    estimated = flags.astype(bool).groupby([experiments["benchmark"], experiments["method"]]).any()
    rows = []
    for (benchmark, method), values in sorted(spent.items()):
        rows.append({"benchmark": benchmark, "method": method,
                     "median_usd": float(np.median(values)),
                     "reached": int(np.isfinite(values).sum()), "seeds": len(values),
                     "estimated": bool(estimated.get((benchmark, method), False))})
    return pd.DataFrame(rows, columns=TO_TARGET_COLUMNS)


def format_to_target(table: pd.DataFrame, targets: pd.DataFrame, metrics: dict[str, str]
                     ) -> str:
    """Plain text per benchmark: which target, then per method the median trial dollars
    to reach it and how many seeds did; "not reached" where the median seed did not."""
    lines = ["trial dollars until the best so far first reached a target (median over seeds; "
             "a seed that never reached it counts as never)"]
    goals = {row.benchmark: row for row in targets.itertuples(index=False)}
    for benchmark, group in table.groupby("benchmark", sort=True):
        goal = goals[benchmark]
        sign = "<=" if goal.mode == "min" else ">="
        lines.append(f"  {benchmark}: target {metrics[benchmark]} {sign} {goal.target:.6g} "
                     f"({goal.how})")
        label = "$ to target" + (" (estimated)" if group["estimated"].all() else "")
        cells = [["method", label, "seeds reached"]]
        for row in group.sort_values(["median_usd", "method"]).itertuples(index=False):
            usd = usd_text(row.median_usd) if math.isfinite(row.median_usd) else "not reached"
            if row.estimated and not group["estimated"].all():
                usd += " (estimated)"
            cells.append([str(row.method), usd, f"{row.reached}/{row.seeds}"])
        widths = [max(len(c[i]) for c in cells) for i in range(3)]
        for i, line in enumerate(cells):
            lines.append("  " + "  ".join(
                c.ljust(w) if j == 0 else c.rjust(w)
                for j, (c, w) in enumerate(zip(line, widths, strict=True))).rstrip())
            if i == 0:
                lines.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)
