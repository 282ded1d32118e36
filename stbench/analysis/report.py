"""One call from a results folder to what a person looks at: a table and one plot per benchmark."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

from stbench.analysis.frame import load
from stbench.analysis.plot import plot_best_so_far
from stbench.analysis.summary import best_so_far, final_table, format_table


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
    Raises ``UserError`` if the tag has no results.
    """
    root = Path(root)
    out_dir = Path(out_dir) if out_dir is not None else root / experiment_tag / "plots"
    df, experiments = load(root, experiment_tag)
    table = final_table(df, experiments)
    text = f"{_status_line(experiment_tag, experiments)}\n\n{format_table(table)}"
    curves = best_so_far(df)
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
    return text, paths
