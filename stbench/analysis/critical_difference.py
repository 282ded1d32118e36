"""Critical-difference diagram across benchmarks (Demšar, 2006): are the methods' ranks over
benchmarks different beyond chance?

Each benchmark is a block; a method's value on it is its final normalized regret (regret.py)
averaged over seeds. The Friedman test (scipy) asks whether any method ranks differently;
the Nemenyi post-hoc test and the diagram come from scikit-posthocs: methods sit at their
mean rank, and a bar joins methods whose difference is not significant at 5 %. Only
benchmarks on which every method ran count (the tests need complete blocks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

MIN_BENCHMARKS = 3
MIN_METHODS = 3  # the Friedman test compares three or more
ALPHA = 0.05
FILENAME = "critical_difference.png"


def final_regret_blocks(finals: pd.DataFrame) -> pd.DataFrame:
    """Benchmarks (rows) x methods (columns): final normalized regret, mean over seeds; only
    benchmarks where every method has a value. ``finals`` is ``bootstrap.final_regrets``
    output."""
    if finals.empty:
        return pd.DataFrame()
    table = finals.pivot_table(index="benchmark", columns="method", values="normalized_regret")
    return table.dropna(axis=0, how="any").sort_index()


def why_not_drawn(blocks: pd.DataFrame, n_benchmarks: int, n_methods: int) -> str | None:
    """One line saying why there is no diagram, or None when it can be drawn. ``n_*``: how
    many the tag has; ``blocks`` holds those with results (``final_regret_blocks``)."""
    def count(found: int, total: int, which: str) -> str:
        return f"this tag has {total}" if found == total else f"{found} of this tag's {which}"

    methods, benchmarks = blocks.shape[1], len(blocks)
    if methods < MIN_METHODS:
        return (f"critical-difference diagram: needs {MIN_METHODS} or more methods (the "
                f"Friedman test); {count(methods, n_methods, f'{n_methods} have results')}")
    if benchmarks < MIN_BENCHMARKS:
        which = f"{n_benchmarks} have results of every method"
        return (f"critical-difference diagram: needs {MIN_BENCHMARKS} or more benchmarks "
                f"with results of every method; {count(benchmarks, n_benchmarks, which)}")
    return None


@dataclass(frozen=True)
class FriedmanNemenyi:
    """The tests' outcome on complete blocks: what the diagram and its line show."""

    blocks: pd.DataFrame  # final_regret_blocks
    ranks: pd.Series  # mean rank per method over benchmarks (1 = lowest regret)
    pvalue: float  # Friedman's; NaN where every benchmark ties every method
    nemenyi: pd.DataFrame  # methods x methods: the post-hoc p-values


def friedman_nemenyi(blocks: pd.DataFrame) -> FriedmanNemenyi:
    """Friedman (scipy) and Nemenyi (scikit-posthocs) on blocks that ``why_not_drawn`` passed."""
    import scikit_posthocs
    from scipy.stats import friedmanchisquare

    ranks = blocks.rank(axis=1, method="average").mean(axis=0)
    if (blocks.nunique(axis=1) == 1).all():  # every method equal on every benchmark
        ones = pd.DataFrame(1.0, index=blocks.columns, columns=blocks.columns)
        return FriedmanNemenyi(blocks, ranks, math.nan, ones)
    pvalue = float(friedmanchisquare(*(blocks[m].to_numpy(float) for m in blocks)).pvalue)
    nemenyi = scikit_posthocs.posthoc_nemenyi_friedman(blocks.reset_index(drop=True))
    return FriedmanNemenyi(blocks, ranks, pvalue, nemenyi.fillna(1.0))


def format_friedman(result: FriedmanNemenyi) -> str:
    """One line: the Friedman test's verdict and the methods by mean rank."""
    order = ", ".join(f"{method} {rank:.2f}" for method, rank in result.ranks.sort_values().items())
    if not math.isfinite(result.pvalue):
        test = "every method ties on every benchmark, nothing to test"
    else:
        verdict = "the ranks differ" if result.pvalue < ALPHA else "no difference in ranks shown"
        test = f"Friedman p = {result.pvalue:.3g}, {verdict}"
    return (f"critical difference over {len(result.blocks)} benchmarks (final normalized "
            f"regret): {test}; mean rank {order}")


def plot_critical_difference(result: FriedmanNemenyi, path: Path) -> Path:
    """Write the diagram to ``path`` (parents created) and return it."""
    import matplotlib

    matplotlib.use("Agg")  # files only
    import matplotlib.pyplot as plt
    import scikit_posthocs

    from stbench.analysis.plot import DPI

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8.0, 1.6 + 0.28 * len(result.ranks)), dpi=DPI)
    try:
        scikit_posthocs.critical_difference_diagram(
            result.ranks, result.nemenyi, ax=ax, alpha=ALPHA,
            label_fmt_left="{label} ({rank:.2f})", label_fmt_right="({rank:.2f}) {label}",
        )
        friedman = (f"Friedman p = {result.pvalue:.3g}" if math.isfinite(result.pvalue)
                    else "every method tied")
        ax.set_title(f"mean rank of final normalized regret over {len(result.blocks)} "
                     f"benchmarks (1 = best; {friedman})\nbars join methods not significantly "
                     f"different (Nemenyi, α = {ALPHA:g})", fontsize="medium")
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path
