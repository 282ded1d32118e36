"""Analysis layer on hand-written result folders: what a user reading the report would notice."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stbench.analysis.frame import load_experiments, load_results
from stbench.analysis.plot import method_curve, plot_best_so_far, use_log_scale
from stbench.analysis.report import report
from stbench.analysis.summary import best_so_far, final_table, format_table
from stbench.model.errors import UserError

TAG = "exp1"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# (trial_id, wallclock_time, value); None is a report without the metric value.
MIN_RUNS = {  # benchmark "toy_min", metric "loss", lower is better
    "good": {
        0: [(0, 1.0, 0.9), (1, 2.0, 0.5), (0, 3.0, 0.7), (2, 4.0, 0.4)],  # final 0.4
        1: [(0, 1.5, 0.8), (1, 2.5, 0.3), (1, 3.5, 0.6)],  # final 0.3
        2: [(0, 0.5, 1.0), (1, 2.0, None), (2, 3.0, 0.5)],  # final 0.5
    },
    "bad": {
        0: [(0, 1.0, 2.0), (1, 2.0, 1.5)],  # final 1.5
        1: [(0, 1.0, 1.8), (1, 3.0, 1.2)],  # final 1.2
        2: [(0, 2.0, 3.0), (1, 4.0, 0.9)],  # final 0.9
    },
}
MAX_RUNS = {  # benchmark "toy_max", metric "accuracy", higher is better
    "good": {
        0: [(0, 1.0, 0.6), (1, 2.0, 0.8), (2, 3.0, 0.7)],  # final 0.8
        1: [(0, 1.0, 0.5), (1, 2.0, 0.9)],  # final 0.9
        2: None,  # no results.jsonl at all
    },
    "bad": {
        0: [(0, 1.0, 0.3), (1, 2.0, 0.4)],  # final 0.4
        1: [(0, 1.0, 0.2), (1, 2.0, 0.5)],  # final 0.5
        2: [],  # empty results.jsonl
    },
}


def write_experiment(
    root: Path,
    benchmark: str,
    method: str,
    seed: int,
    metric: str,
    mode: str,
    reports: list[tuple[int, float, float | None]] | None,
    status: str = "completed",
) -> Path:
    folder = root / TAG / benchmark / method / str(seed)
    folder.mkdir(parents=True)
    metadata = {
        "experiment_tag": TAG,
        "benchmark": benchmark,
        "method": method,
        "seed": seed,
        "metric": metric,
        "mode": mode,
        "resource_attr": "epoch",
        "status": status,
        "start_time": "2024-01-01T00:00:00",
        "end_time": None,
        "elapsed_seconds": 10.0,
        "spec": {},
        "versions": {},
        "unknown_key": 1,
    }
    (folder / "metadata.json").write_text(json.dumps(metadata))
    if reports is not None:
        lines = []
        for trial_id, time, value in reports:
            metrics = {"epoch": 1} if value is None else {metric: value, "epoch": 1}
            record = {
                "trial_id": trial_id,
                "status": "Completed",
                "wallclock_time": time,
                "config": {"lr": 0.1 * (trial_id + 1), "layers": [64, 32]},
                "metrics": metrics,
                "cost_usd": 0.01,
                "nested": {"ignored": True},
            }
            lines.append(json.dumps(record))
        (folder / "results.jsonl").write_text("".join(line + "\n" for line in lines))
    return folder


@pytest.fixture
def results_root(tmp_path: Path) -> Path:
    for benchmark, metric, mode, runs in [
        ("toy_min", "loss", "min", MIN_RUNS),
        ("toy_max", "accuracy", "max", MAX_RUNS),
    ]:
        for method, seeds in runs.items():
            for seed, reports in seeds.items():
                write_experiment(tmp_path, benchmark, method, seed, metric, mode, reports)
    return tmp_path


def test_load_results_has_one_row_per_report_and_flat_columns(results_root: Path) -> None:
    df = load_results(results_root, TAG)
    n_reports = sum(
        len(r or [])
        for runs in (MIN_RUNS, MAX_RUNS)
        for seeds in runs.values()
        for r in seeds.values()
    )
    assert len(df) == n_reports
    for column in ["experiment_tag", "benchmark", "method", "seed", "metric", "mode"]:
        assert column in df.columns
    for column in ["trial_id", "status", "wallclock_time", "experiment_status"]:
        assert column in df.columns
    expected = {"loss", "accuracy", "epoch", "config_lr", "config_layers", "cost_usd"}
    assert expected <= set(df.columns)
    assert "nested" not in df.columns
    assert set(df["experiment_status"]) == {"completed"}
    assert df["seed"].dtype.kind == "i"


def test_truncated_last_line_is_skipped(tmp_path: Path) -> None:
    folder = write_experiment(tmp_path, "b", "m", 0, "loss", "min", [(0, 1.0, 0.5)])
    with (folder / "results.jsonl").open("a") as f:
        f.write('{"trial_id": 1, "wallclock')  # a running experiment caught mid-write
    assert len(load_results(tmp_path, TAG)) == 1


def test_missing_tag_raises_user_error_naming_the_fix(results_root: Path) -> None:
    with pytest.raises(UserError) as info:
        load_results(results_root, "nope")
    message = str(info.value)
    assert "'nope'" in message and "stbench run --experiment_tag nope" in message
    assert "\n" not in message


def test_load_experiments_counts_trials_reports_and_empty_ones(results_root: Path) -> None:
    exps = load_experiments(results_root, TAG)
    assert len(exps) == 12
    row = exps.set_index(["benchmark", "method", "seed"]).loc[("toy_min", "good", 0)]
    assert (row["n_trials"], row["n_reports"], row["mode"]) == (3, 4, "min")
    empty = exps[(exps["n_reports"] == 0)]
    assert set(zip(empty["method"], empty["seed"], strict=True)) == {("good", 2), ("bad", 2)}


def test_best_so_far_is_monotone_and_respects_mode(results_root: Path) -> None:
    curves = best_so_far(load_results(results_root, TAG))
    for (benchmark, _, _), g in curves.groupby(["benchmark", "method", "seed"]):
        assert g["wallclock_time"].is_monotonic_increasing
        diffs = np.diff(g["best"].to_numpy())
        assert (diffs <= 0).all() if benchmark == "toy_min" else (diffs >= 0).all()
    seed0 = curves[(curves["benchmark"] == "toy_min") & (curves["method"] == "good")]
    seed0 = seed0[seed0["seed"] == 0]
    assert seed0["best"].tolist() == [0.9, 0.5, 0.5, 0.4]
    acc = curves[(curves["benchmark"] == "toy_max") & (curves["method"] == "good")]
    assert acc[acc["seed"] == 0]["best"].tolist() == [0.6, 0.8, 0.8]
    # The report without a loss value is skipped, not turned into a NaN best.
    assert not curves["best"].isna().any()
    assert len(curves[(curves["method"] == "good") & (curves["seed"] == 2)]) == 2


def test_final_table_matches_hand_computed_values(results_root: Path) -> None:
    df = load_results(results_root, TAG)
    table = final_table(df, load_experiments(results_root, TAG)).set_index(["benchmark", "method"])

    good = table.loc[("toy_min", "good")]
    finals = np.array([0.4, 0.3, 0.5])
    assert good["n_seeds"] == 3 and good["missing"] == 0
    assert good["mean"] == pytest.approx(0.4)
    assert good["se"] == pytest.approx(finals.std(ddof=1) / math.sqrt(3))
    assert good["iqm"] == pytest.approx(0.4)
    assert good["trials"] == pytest.approx((3 + 2 + 3) / 3)
    bad = table.loc[("toy_min", "bad")]
    assert bad["mean"] == pytest.approx(1.2)
    assert (good["rank"], bad["rank"]) == (1, 2)  # lower loss wins

    good_max, bad_max = table.loc[("toy_max", "good")], table.loc[("toy_max", "bad")]
    assert good_max["mean"] == pytest.approx(0.85)
    assert (good_max["n_seeds"], good_max["missing"]) == (2, 1)
    assert (bad_max["n_seeds"], bad_max["missing"]) == (2, 1)
    assert (good_max["rank"], bad_max["rank"]) == (1, 2)  # higher accuracy wins


def _table_for(finals: dict[str, list[float]], mode: str) -> pd.DataFrame:
    rows, exps = [], []
    for method, values in finals.items():
        for seed, value in enumerate(values):
            common = {"benchmark": "b", "method": method, "seed": seed, "metric": "y", "mode": mode}
            rows.append({**common, "trial_id": 0, "wallclock_time": 1.0, "y": value})
            exps.append({**common, "status": "completed"})
    return final_table(pd.DataFrame(rows), pd.DataFrame(exps)).set_index("method")


def test_iqm_trims_outlying_seeds_and_single_seed_has_no_se() -> None:
    table = _table_for({"a": [1.0, 2.0, 3.0, 100.0], "b": [5.0]}, "min")
    assert table.loc["a", "mean"] == pytest.approx(26.5)
    assert table.loc["a", "iqm"] == pytest.approx(2.5)  # mean of the middle two
    assert math.isnan(table.loc["b", "se"])
    assert table.loc["b", "rank"] == 1 and table.loc["a", "rank"] == 2


def test_ties_share_the_average_rank() -> None:
    table = _table_for({"a": [1.0], "b": [1.0], "c": [0.5]}, "max")
    assert table["rank"].to_dict() == {"a": 1.5, "b": 1.5, "c": 3.0}


def test_format_table_is_sorted_readable_text(results_root: Path) -> None:
    df = load_results(results_root, TAG)
    text = format_table(final_table(df, load_experiments(results_root, TAG)))
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["benchmark", "metric", "method"]
    body = [line.split() for line in lines[2:]]
    assert [(cells[0], cells[3]) for cells in body] == [
        ("toy_max", "good"),
        ("toy_max", "bad"),
        ("toy_min", "good"),
        ("toy_min", "bad"),
    ]
    assert "0.4 ± 0.05774" in text  # 4 significant digits
    assert "(1 missing)" in text
    assert len({len(line) for line in lines[:2]}) == 1  # header and rule are aligned


def _priced_frames(costs: dict[str, dict[int, list[tuple[int, float | None]]]]) -> tuple:
    """Report rows with (trial_id, cost_usd so far) per method and seed; y improves per row."""
    rows, exps = [], []
    for method, seeds in costs.items():
        for seed, reports in seeds.items():
            common = {"benchmark": "b", "method": method, "seed": seed, "metric": "y",
                      "mode": "min"}
            for i, (trial_id, cost) in enumerate(reports):
                rows.append({**common, "trial_id": trial_id, "wallclock_time": float(i),
                             "y": 10.0 - i - seed, "cost_usd": cost})
            exps.append({**common, "status": "completed"})
    return pd.DataFrame(rows), pd.DataFrame(exps)


def test_cost_counts_each_trial_once_and_averages_seeds() -> None:
    df, exps = _priced_frames({
        # seed 0: trial 0 grows to 0.30 over three reports, trial 1 costs 0.20 -> 0.50
        # seed 1: trial 0 costs 0.10, trial 1 has no cost (not priced yet) -> 0.10
        "sagemaker": {0: [(0, 0.1), (0, 0.25), (1, 0.2), (0, 0.3)], 1: [(0, 0.1), (1, None)]},
        # one seed priced, one seed with no cost at all: the mean is over priced seeds
        "partly": {0: [(0, 2.0), (1, 3.0)], 1: [(0, None)]},
        "local": {0: [(0, None), (1, None)]},
    })
    full = final_table(df, exps)
    assert list(full.columns) == [
        "benchmark", "method", "metric", "mode", "n_seeds", "missing", "mean", "se", "iqm",
        "trials", "cost_usd", "cost_estimated", "orchestrator_usd", "orchestrator_state", "rank",
    ]
    table = full.set_index("method")
    assert table.loc["sagemaker", "cost_usd"] == pytest.approx((0.5 + 0.1) / 2)
    assert table.loc["partly", "cost_usd"] == pytest.approx(5.0)
    assert math.isnan(table.loc["local", "cost_usd"])
    text = format_table(full)
    lines = text.splitlines()
    assert lines[0].split()[-3:] == ["trials", "$", "rank"]
    by_method = {line.split()[3]: line.split() for line in lines[2:]}
    assert by_method["sagemaker"][-2] == "0.3"
    assert by_method["partly"][-2] == "5.00"
    assert by_method["local"][-2] == "n/a"


def test_cost_from_the_results_folder(results_root: Path) -> None:
    """The fixture prices every report at 0.01: per trial once, so cost = 0.01 x trials."""
    df = load_results(results_root, TAG)
    table = final_table(df, load_experiments(results_root, TAG)).set_index(["benchmark", "method"])
    assert table.loc[("toy_min", "good"), "cost_usd"] == pytest.approx(0.01 * (3 + 2 + 3) / 3)
    assert table.loc[("toy_max", "bad"), "cost_usd"] == pytest.approx(0.02)  # seed 2 unpriced
    assert "trials $" in format_table(table.reset_index())


def test_unpriced_runs_show_no_cost_column() -> None:
    """Local runs carry no cost: their table reads exactly as before the column existed."""
    table = _table_for({"a": [1.0, 2.0], "b": [3.0]}, "min")
    assert table["cost_usd"].isna().all()
    text = format_table(table.reset_index())
    assert text.splitlines()[0].split() == [
        "benchmark", "metric", "method", "seeds", "best", "mean", "±", "se", "IQM", "trials",
        "rank",
    ]
    assert "cost" not in text
    no_rows = pd.DataFrame(columns=["benchmark", "method", "seed", "trial_id", "metric", "mode"])
    exps = pd.DataFrame([{"benchmark": "b", "method": "m", "seed": 0, "metric": "y",
                          "mode": "min", "status": "running"}])
    assert math.isnan(final_table(no_rows, exps).loc[0, "cost_usd"])


def test_method_curve_starts_when_all_seeds_have_a_value() -> None:
    curves = pd.DataFrame(
        {
            "seed": [0, 0, 1, 1],
            "wallclock_time": [1.0, 3.0, 2.0, 4.0],
            "best": [4.0, 2.0, 6.0, 1.0],
        }
    )
    times, mean, se, n = method_curve(curves)
    assert n == 2
    assert times.tolist() == [2.0, 3.0, 4.0]
    assert mean.tolist() == [5.0, 4.0, 1.5]
    assert se[0] == pytest.approx(np.std([4.0, 6.0], ddof=1) / math.sqrt(2))


def test_log_scale_only_for_positive_values_spanning_decades() -> None:
    assert use_log_scale(np.array([0.001, 0.5]))
    assert not use_log_scale(np.array([0.1, 0.5]))
    assert not use_log_scale(np.array([-1.0, 100.0]))


def test_plot_writes_a_valid_png(results_root: Path, tmp_path: Path) -> None:
    curves = best_so_far(load_results(results_root, TAG))
    path = plot_best_so_far(curves, "toy_min", "loss", "min", tmp_path / "out" / "toy_min.png")
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000


def test_report_writes_one_png_per_benchmark_and_can_run_twice(results_root: Path) -> None:
    text, paths = report(results_root, TAG)
    plots = results_root / TAG / "plots"
    # per benchmark, then across the two benchmarks, rank over time and, as rows carry
    # cost_usd, per dollar (no critical-difference diagram: 2 benchmarks)
    assert paths == [plots / "toy_max.png", plots / "toy_min.png", plots / "across_benchmarks.png",
                     plots / "rank_over_time.png", plots / "toy_max_cost.png",
                     plots / "toy_min_cost.png"]
    for path in paths:
        assert path.read_bytes().startswith(PNG_MAGIC)
    assert text.startswith(f"experiment tag '{TAG}': 12 experiments (12 completed)")
    assert "toy_min" in text and "toy_max" in text
    assert "across benchmarks: normalized regret" in text
    assert "toy_min: optimum 0.3 (best observed)" in text  # no optimum in metadata
    assert "paired bootstrap over seeds" in text and "good beats bad" in text
    # The plots folder under the tag must not be mistaken for a benchmark next time.
    text_again, _ = report(results_root, TAG)
    assert text_again == text


def test_report_with_no_reports_at_all_still_works(tmp_path: Path) -> None:
    write_experiment(tmp_path, "b", "m", 0, "loss", "min", [], status="running")
    out = tmp_path / "elsewhere"
    text, paths = report(tmp_path, TAG, out_dir=out)
    assert paths == [out / "b.png"] and paths[0].read_bytes().startswith(PNG_MAGIC)
    assert "1 running" in text and "0 (1 missing)" in text
