"""Best-so-far against dollars spent, for studies whose rows carry ``cost_usd`` (SageMaker)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stbench.analysis.frame import metric_column
from stbench.analysis.summary import GROUP

COST_COLUMNS = [*GROUP, "wallclock_time", "cost_usd", "best"]


def cost_curves(df: pd.DataFrame) -> pd.DataFrame:
    """Per experiment and report: dollars spent so far and the best metric so far.

    Each row carries its trial's cost so far, so the money spent at a report is the sum over
    trials of each trial's latest cost at or before it (a trial not yet priced counts 0).
    Experiments without any cost value are left out: an unpriced run is not free.
    """
    if "cost_usd" not in df.columns or df.empty:
        return pd.DataFrame(columns=COST_COLUMNS)
    parts = []
    for (benchmark, method, seed), group in df.groupby(GROUP, sort=True):
        group = group.sort_values("wallclock_time", kind="stable")
        cost = pd.to_numeric(group["cost_usd"], errors="coerce").astype(float)
        column = metric_column(group["metric"].iloc[0])
        if column not in group.columns or not np.isfinite(cost).any():
            continue
        latest = cost.groupby(group["trial_id"]).cummax().groupby(group["trial_id"]).ffill()
        increments = latest.fillna(0.0).groupby(group["trial_id"]).diff().fillna(latest.fillna(0))
        spent = increments.cumsum()
        values = pd.to_numeric(group[column], errors="coerce")
        values = values.astype(float).where(np.isfinite(values.astype(float)))
        best = values.cummin() if group["mode"].iloc[0] == "min" else values.cummax()
        usable = best.notna()
        parts.append(pd.DataFrame({
            "benchmark": benchmark, "method": method, "seed": seed,
            "wallclock_time": group["wallclock_time"][usable].to_numpy(float),
            "cost_usd": spent[usable].to_numpy(float),
            "best": best[usable].to_numpy(float),
        }))
    if not parts:
        return pd.DataFrame(columns=COST_COLUMNS)
    return pd.concat(parts, ignore_index=True)[COST_COLUMNS]
