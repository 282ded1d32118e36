"""Is "A beats B" real? Paired bootstrap intervals of the final difference, over seeds.

Seeds pair the experiments: seed s of method A and seed s of method B share the benchmark
and, where the benchmark is noisy, its luck. The difference for one pair is A's final regret
minus B's (negative: A is better). Per benchmark the regret is in the metric's units; across
benchmarks it is the normalized regret (see regret.py), seeds are resampled within each
benchmark and every benchmark weighs the same. The interval is the percentile bootstrap's;
"A better" needs the whole interval below 0, else "not shown"; rows are oriented so that
A is the method with the lower mean.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

ALL_BENCHMARKS = "(all benchmarks)"
N_RESAMPLES = 4000
LEVEL = 0.95
# The analysis draws its own random numbers: the same results give the same intervals.
BOOTSTRAP_SEED = 20240229
PAIR_COLUMNS = [
    "benchmark", "method_a", "method_b", "n_pairs", "mean_difference", "ci_low", "ci_high",
    "verdict",
]


def final_regrets(regret: pd.DataFrame) -> pd.DataFrame:
    """Each experiment's regret and normalized regret at the end of its budget."""
    last = regret[regret["fraction"] == regret["fraction"].max()]
    return last[["benchmark", "method", "seed", "regret", "normalized_regret"]].reset_index(
        drop=True
    )


def paired_bootstrap(
    finals: pd.DataFrame,
    n_resamples: int = N_RESAMPLES,
    level: float = LEVEL,
    seed: int = BOOTSTRAP_SEED,
) -> pd.DataFrame:
    """One row per benchmark (and across all, if more than one) and pair of methods.

    Each row is oriented so that A looks better in that scope (mean difference <= 0): the
    verdict is "A better" or "not shown". Pairs with fewer than two common seeds (in any
    benchmark, for the row across all) get NaN bounds and "not shown". Every (benchmark, pair)
    draws from its own generator, spawned in row order from ``seed``.
    """
    if finals.empty:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    order = finals.groupby("method")["normalized_regret"].mean().sort_values(kind="stable")
    pairs = list(itertools.combinations(order.index, 2))
    benchmarks = sorted(finals["benchmark"].unique())
    scopes = [*benchmarks, ALL_BENCHMARKS] if len(benchmarks) > 1 else benchmarks
    generators = np.random.SeedSequence(seed).spawn(len(scopes) * len(pairs))
    # benchmark and seed x method, once per column (not once per pair and scope)
    wide = {column: finals.pivot_table(index=["benchmark", "seed"], columns="method",
                                       values=column)
            for column in ("regret", "normalized_regret")}
    rows = []
    for index, (scope, (a, b)) in enumerate(itertools.product(scopes, pairs)):
        if scope == ALL_BENCHMARKS:
            data = wide["normalized_regret"]
        else:
            data = wide["regret"].loc[wide["regret"].index.get_level_values("benchmark") == scope]
        groups = _paired_differences(data, a, b)
        rng = np.random.default_rng(generators[index])
        result = _interval(groups, rng, n_resamples, level)
        if result["mean_difference"] > 0:  # B looks better: say it as "B vs A"
            a, b = b, a
            result.update(mean_difference=-result["mean_difference"],
                          ci_low=-result["ci_high"], ci_high=-result["ci_low"],
                          verdict="A better" if result["verdict"] == "B better" else "not shown")
        rows.append({"benchmark": scope, "method_a": a, "method_b": b, **result})
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def _paired_differences(wide: pd.DataFrame, a: str, b: str) -> list[np.ndarray]:
    """A minus B per common seed, one array per benchmark (the resampling strata); ``wide``
    is (benchmark, seed) x method."""
    if a not in wide.columns or b not in wide.columns:
        return []
    diff = (wide[a] - wide[b]).dropna()
    return [group.to_numpy(float) for _, group in diff.groupby(level="benchmark", sort=True)]


def _interval(groups: list[np.ndarray], rng: np.random.Generator, n_resamples: int,
              level: float) -> dict[str, object]:
    n_pairs = int(sum(len(g) for g in groups))
    groups = [g for g in groups if len(g)]
    if not groups:
        return {"n_pairs": 0, "mean_difference": math.nan, "ci_low": math.nan,
                "ci_high": math.nan, "verdict": "not shown"}
    mean = float(np.mean([g.mean() for g in groups]))
    if min(len(g) for g in groups) < 2:
        return {"n_pairs": n_pairs, "mean_difference": mean, "ci_low": math.nan,
                "ci_high": math.nan, "verdict": "not shown"}
    low, high = percentile_interval(resampled_means(groups, rng, n_resamples), level)
    verdict = "A better" if high < 0 else "B better" if low > 0 else "not shown"
    return {"n_pairs": n_pairs, "mean_difference": mean, "ci_low": float(low),
            "ci_high": float(high), "verdict": verdict}


def resampled_means(groups: list[np.ndarray], rng: np.random.Generator,
                    n_resamples: int) -> np.ndarray:
    """Bootstrap replicates of the mean over groups of each group's mean over its seeds.

    Each group (a benchmark) is an array whose first axis is seeds (a value each, or a row
    of values each, e.g. a curve); seeds are drawn with replacement within their group,
    every group weighs the same. Returns ``n_resamples`` replicates (first axis)."""
    return np.mean(
        [g[rng.integers(0, len(g), size=(n_resamples, len(g)))].mean(axis=1) for g in groups],
        axis=0,
    )


def percentile_interval(replicates: np.ndarray, level: float = LEVEL) -> np.ndarray:
    """The percentile bootstrap's bounds (low, high) along the replicates' first axis."""
    tail = (1.0 - level) / 2.0
    return np.quantile(replicates, [tail, 1.0 - tail], axis=0)


BAND_COLUMNS = ["method", "fraction", "mean_rank", "rank_low", "rank_high", "n_benchmarks"]


def rank_bands(regret: pd.DataFrame, n_resamples: int = N_RESAMPLES, level: float = LEVEL,
               seed: int = BOOTSTRAP_SEED) -> pd.DataFrame:
    """Mean rank over the budget with a bootstrap band, per method and fraction.

    ``regret`` is ``regret.regret_over_time`` output. The point estimate is
    ``regret.across_benchmarks``' mean rank (mean over seeds, then over benchmarks); the band
    resamples whole seeds (their rank curves) within each benchmark, so it is the
    uncertainty that more seeds would shrink. A method with one seed per benchmark gets a
    band of its point estimate. Every method draws from its own generator, spawned in
    method order from ``seed``.
    """
    if regret.empty:
        return pd.DataFrame(columns=BAND_COLUMNS)
    methods = sorted(regret["method"].unique())
    generators = np.random.SeedSequence(seed).spawn(len(methods))
    parts = []
    for method, stream in zip(methods, generators, strict=True):
        wide = regret[regret["method"] == method].pivot_table(
            index=["benchmark", "seed"], columns="fraction", values="rank")
        groups = [g.to_numpy(float) for _, g in wide.groupby(level="benchmark", sort=True)]
        replicates = resampled_means(groups, np.random.default_rng(stream), n_resamples)
        low, high = percentile_interval(replicates, level)
        parts.append(pd.DataFrame({
            "method": method, "fraction": wide.columns.to_numpy(float),
            "mean_rank": np.mean([g.mean(axis=0) for g in groups], axis=0),
            "rank_low": low, "rank_high": high, "n_benchmarks": len(groups),
        }))
    return pd.concat(parts, ignore_index=True)[BAND_COLUMNS]


def format_pairs(pairs: pd.DataFrame, level: float = LEVEL) -> str:
    """One line per pair: the verdict in words, then the mean difference and its interval."""
    if pairs.empty:
        return "no pairs of methods to compare"
    lines = [f"paired bootstrap over seeds, {level:.0%} interval of final regret A - B "
             "(negative: A better):"]
    for scope, group in pairs.groupby("benchmark", sort=False):
        lines.append(f"  {scope}")
        for row in group.itertuples(index=False):
            if row.verdict == "A better":
                claim = f"{row.method_a} beats {row.method_b}"
            else:
                claim = f"{row.method_a} vs {row.method_b}: not shown"
            mean = f"{row.mean_difference:+.4g}" if math.isfinite(row.mean_difference) else "n/a"
            interval = (f"[{row.ci_low:.4g}, {row.ci_high:.4g}]" if math.isfinite(row.ci_low)
                        else "(needs 2+ paired seeds per benchmark)")
            lines.append(f"    {claim:32s} {mean} {interval}, {row.n_pairs} pairs")
    return "\n".join(lines)
