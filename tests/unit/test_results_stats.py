"""`stbench results`' statistics and export on generated tags: the critical-difference diagram
(or the line saying why there is none), rank over time with bootstrap bands, the --csv frame
and its documented columns, and the time axis of simulated studies."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import matplotlib.axes
import numpy as np
import pandas as pd
import pytest

from stbench.analysis.bootstrap import rank_bands
from stbench.analysis.critical_difference import (
    format_friedman,
    friedman_nemenyi,
    plot_critical_difference,
)
from stbench.analysis.report import report
from stbench.cli.main import main

TAG = "stats"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "results.md"
# a variant's label is an opaque string to the analysis, parentheses and all
METHODS = {"good": 0.1, "middle": 0.5, "ASHA(reduction_factor=4)": 0.9}  # final loss level


def write_tag(root: Path, n_benchmarks: int, seeds: int = 4, backend: str = "simulated",
              methods: dict[str, float] = METHODS) -> Path:
    """Each method's loss falls from 2 toward its level over 10 reports, with noise."""
    streams = np.random.SeedSequence(7).spawn(n_benchmarks * len(methods) * seeds)
    index = 0
    for b in range(n_benchmarks):
        for method, level in methods.items():
            for seed in range(seeds):
                rng = np.random.default_rng(streams[index])
                index += 1
                folder = root / TAG / f"bench{b}" / method / str(seed)
                folder.mkdir(parents=True)
                metadata = {"experiment_tag": TAG, "benchmark": f"bench{b}", "method": method,
                            "seed": seed, "metric": "loss", "mode": "min", "status": "completed",
                            "optimum": 0.0, "elapsed_seconds": 10.0,
                            "spec": {"max_wallclock_time": 10.0, "backend": backend}}
                (folder / "metadata.json").write_text(json.dumps(metadata))
                rows = [{"trial_id": t, "status": "Completed", "wallclock_time": float(t + 1),
                         "config": {"lr": float(rng.uniform())},
                         "metrics": {"loss": level + 2.0 / (t + 1) + rng.uniform(0, 0.05),
                                     "epoch": 1},
                         "worker_time": 0.5, "simulated_start_seconds": 0.05,
                         "cost_usd": 0.001}
                        for t in range(10)]
                (folder / "results.jsonl").write_text(
                    "".join(json.dumps(row) + "\n" for row in rows))
    return root


def test_three_benchmarks_draw_the_critical_difference_diagram(tmp_path: Path) -> None:
    text, paths = report(write_tag(tmp_path, 3), TAG, out_dir=tmp_path / "plots")
    diagram = tmp_path / "plots" / "critical_difference.png"
    assert diagram in paths and diagram.read_bytes().startswith(PNG_MAGIC)
    line = next(x for x in text.splitlines() if x.startswith("critical difference"))
    # the same method wins on every benchmark: mean ranks 1, 2, 3 in that order
    assert line.endswith("mean rank good 1.00, middle 2.00, ASHA(reduction_factor=4) 3.00")
    assert "over 3 benchmarks" in line and "Friedman p = 0.0498, the ranks differ" in line


def test_methods_tied_everywhere_get_a_diagram_and_no_test(
        tmp_path: Path, recwarn: pytest.WarningsRecorder) -> None:
    blocks = pd.DataFrame(0.0, index=["b0", "b1", "b2"], columns=["A", "B", "C"])
    result = friedman_nemenyi(blocks)
    assert format_friedman(result) == (
        "critical difference over 3 benchmarks (final normalized regret): every method ties "
        "on every benchmark, nothing to test; mean rank A 2.00, B 2.00, C 2.00")
    path = plot_critical_difference(result, tmp_path / "cd.png")
    assert path.read_bytes().startswith(PNG_MAGIC)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_two_benchmarks_say_so_instead_of_drawing(tmp_path: Path) -> None:
    text, paths = report(write_tag(tmp_path, 2), TAG, out_dir=tmp_path / "plots")
    assert ("critical-difference diagram: needs 3 or more benchmarks with results of every "
            "method; this tag has 2") in text
    assert not (tmp_path / "plots" / "critical_difference.png").exists()
    assert tmp_path / "plots" / "rank_over_time.png" in paths


def test_a_benchmark_without_every_method_does_not_count(tmp_path: Path) -> None:
    root = write_tag(tmp_path, 3)
    shutil.rmtree(root / TAG / "bench2" / "middle")  # not run there (unreported would count
    # as the worst: normalized regret 1, as everywhere in the report)
    text, _ = report(root, TAG, out_dir=tmp_path / "plots")
    assert ("critical-difference diagram: needs 3 or more benchmarks with results of every "
            "method; 2 of this tag's 3 have results of every method") in text
    assert not (tmp_path / "plots" / "critical_difference.png").exists()


def test_two_methods_say_so_instead_of_drawing(tmp_path: Path) -> None:
    root = write_tag(tmp_path, 3, methods={"good": 0.1, "bad": 0.9})
    text, _ = report(root, TAG, out_dir=tmp_path / "plots")
    assert "critical-difference diagram: needs 3 or more methods (the Friedman test); " \
           "this tag has 2" in text
    assert not (tmp_path / "plots" / "critical_difference.png").exists()


def test_rank_bands_cover_the_mean_and_shrink_to_it_when_seeds_agree() -> None:
    fractions = [0.5, 1.0]
    rows = []
    for seed in range(6):
        for fraction in fractions:
            # A is always best; B and C trade places by seed
            swap = seed % 2
            for method, rank in [("A", 1.0), ("B", 2.0 + swap), ("C", 3.0 - swap)]:
                rows.append({"benchmark": "b", "method": method, "seed": seed,
                             "fraction": fraction, "rank": rank})
    bands = rank_bands(pd.DataFrame(rows), n_resamples=500).set_index(["method", "fraction"])
    assert (bands.loc["A", ["mean_rank", "rank_low", "rank_high"]] == 1.0).all().all()
    b = bands.loc[("B", 1.0)]
    assert b["mean_rank"] == 2.5 and b["rank_low"] < 2.5 < b["rank_high"]
    assert 2.0 <= b["rank_low"] and b["rank_high"] <= 3.0


def documented_columns() -> dict[str, str]:
    """The CSV table of docs/results.md: column name (or pattern) -> type."""
    text = DOCS.read_text()
    section = text[text.index("### The CSV columns"):]
    end = section.find("\n#", 5)
    section = section if end == -1 else section[:end]
    return {m.group(1): m.group(2) for m in
            re.finditer(r"^\| `([^`]+)` \| (\w+) \|", section, flags=re.MULTILINE)}


def test_csv_has_one_row_per_report_and_only_documented_columns(tmp_path: Path) -> None:
    root = write_tag(tmp_path, 1, seeds=2)
    out = tmp_path / "frame.csv"
    assert main(["results", "--experiment_tag", TAG, "--results_root", str(root),
                 "--out_dir", str(tmp_path / "plots"), "--csv", str(out)]) == 0
    frame = pd.read_csv(out)
    assert len(frame) == 3 * 2 * 10  # methods x seeds x reports
    documented = documented_columns()
    # a reported metric is a column of its own name; a hyperparameter config_<name>
    named = {c: documented.get(c) or documented.get("<metric>" if c in ("loss", "epoch")
                                                    else "config_<name>") for c in frame.columns}
    assert all(named.values()), [c for c, t in named.items() if not t]
    assert set(frame["backend"]) == {"simulated"}
    assert set(frame["method"]) == set(METHODS)
    assert frame["wallclock_time"].max() == 10.0


def test_csv_into_a_missing_folder_is_one_line_and_creates_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_tag(tmp_path, 1, seeds=1)
    code = main(["results", "--experiment_tag", TAG, "--results_root", str(root),
                 "--csv", str(tmp_path / "nowhere" / "frame.csv")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("stbench: error: --csv ") and "\n" not in err
    assert "does not exist" in err
    assert not (root / TAG / "plots").exists() and not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("backend, label", [("simulated", "simulated time (s)"),
                                            ("local", "wallclock time (s)")])
def test_the_time_axis_says_simulated_time_for_simulated_studies(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str, label: str) -> None:
    labels: list[str] = []
    original = matplotlib.axes.Axes.set_xlabel

    def record(ax: matplotlib.axes.Axes, text: str, *args: object, **kwargs: object) -> object:
        labels.append(text)
        return original(ax, text, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "set_xlabel", record)
    report(write_tag(tmp_path, 1, seeds=1, backend=backend), TAG, out_dir=tmp_path / "plots")
    assert labels[0] == label  # the best-so-far plot, the first one drawn
