"""Cross-benchmark analysis on hand-made frames: regret, rank, bootstrap verdicts, cost curves.

Every expected number below is worked out by hand from the frames in this file.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from stbench.analysis.bootstrap import (
    ALL_BENCHMARKS,
    final_regrets,
    format_pairs,
    paired_bootstrap,
)
from stbench.analysis.cost import cost_curves
from stbench.analysis.regret import (
    across_benchmarks,
    benchmark_references,
    checkpoint_table,
    format_checkpoints,
    regret_over_time,
)


def experiments_frame(rows: list[tuple[str, str, int, str, float, float]]) -> pd.DataFrame:
    """(benchmark, method, seed, mode, optimum, budget_seconds) per experiment."""
    return pd.DataFrame(rows, columns=["benchmark", "method", "seed", "mode", "optimum",
                                       "budget_seconds"])


def curves_frame(points: dict[tuple[str, str, int], list[tuple[float, float]]]) -> pd.DataFrame:
    """Best-so-far steps: (benchmark, method, seed) -> [(time, best), ...]."""
    rows = [(b, m, s, t, v) for (b, m, s), steps in points.items() for t, v in steps]
    return pd.DataFrame(rows, columns=["benchmark", "method", "seed", "wallclock_time", "best"])


# "lo" minimizes with known optimum 0 and a 10 s budget; "hi" maximizes, optimum unknown.
EXPERIMENTS = experiments_frame([
    ("lo", "A", 0, "min", 0.0, 10.0), ("lo", "B", 0, "min", 0.0, 10.0),
    ("hi", "A", 0, "max", math.nan, 4.0), ("hi", "B", 0, "max", math.nan, 4.0),
])
CURVES = curves_frame({
    ("lo", "A", 0): [(1.0, 8.0), (4.0, 2.0)],  # first report 8, then 2 from t=4
    ("lo", "B", 0): [(3.0, 4.0), (6.0, 1.0)],  # nothing before t=3
    ("hi", "A", 0): [(1.0, 0.5), (2.0, 0.9)],
    ("hi", "B", 0): [(1.0, 0.7)],
})


def test_references_use_known_optimum_else_best_observed() -> None:
    refs = benchmark_references(CURVES, EXPERIMENTS).set_index("benchmark")
    assert refs.loc["lo", "optimum"] == 0.0 and refs.loc["lo", "optimum_known"]
    # the worst final best: A ends at 2, B at 1 (min mode)
    assert refs.loc["lo", "reference"] == 2.0
    assert refs.loc["hi", "optimum"] == 0.9 and not refs.loc["hi", "optimum_known"]
    assert refs.loc["hi", "reference"] == pytest.approx(0.7)  # max mode: the lowest final
    assert refs.loc["hi", "budget"] == 4.0


def test_regret_is_normalized_clipped_and_one_before_the_first_report() -> None:
    regret = regret_over_time(CURVES, EXPERIMENTS, grid_points=5)  # fractions .2 .4 .6 .8 1
    lo = regret[regret["benchmark"] == "lo"].set_index(["method", "fraction"])
    # A at t=2 (fraction .2): best 8, regret 8, 8/2 clipped to 1; at t=4: 2/2
    assert lo.loc[("A", 0.2), "regret"] == 8.0
    assert lo.loc[("A", 0.2), "normalized_regret"] == 1.0
    assert lo.loc[("A", 0.4), "normalized_regret"] == 1.0
    # B has no report at t=2: best NaN, normalized regret 1, ranked behind A
    assert math.isnan(lo.loc[("B", 0.2), "best"])
    assert lo.loc[("B", 0.2), "normalized_regret"] == 1.0
    assert lo.loc[("B", 0.2), "rank"] == 2.0 and lo.loc[("A", 0.2), "rank"] == 1.0
    # at t=6 B (1) overtakes A (2)
    assert lo.loc[("B", 0.6), "normalized_regret"] == pytest.approx(1 / 2)
    assert lo.loc[("B", 0.6), "rank"] == 1.0
    hi = regret[regret["benchmark"] == "hi"].set_index(["method", "fraction"])
    # max mode: regret is optimum minus best; scale 0.9 - 0.7 = 0.2
    assert hi.loc[("B", 1.0), "regret"] == pytest.approx(0.2)
    assert hi.loc[("B", 1.0), "normalized_regret"] == pytest.approx(1.0)
    assert hi.loc[("A", 0.4), "normalized_regret"] == 1.0  # t=1.6: best 0.5, 0.4 / 0.2 clipped
    assert hi.loc[("A", 1.0), "normalized_regret"] == 0.0


def test_ties_share_rank_and_across_benchmarks_averages_each_benchmark_once() -> None:
    experiments = experiments_frame([
        ("p", "A", 0, "min", 0.0, 1.0), ("p", "B", 0, "min", 0.0, 1.0),
        ("p", "A", 1, "min", 0.0, 1.0), ("p", "B", 1, "min", 0.0, 1.0),
        ("q", "A", 0, "min", 0.0, 1.0), ("q", "B", 0, "min", 0.0, 1.0),
    ])
    curves = curves_frame({
        ("p", "A", 0): [(0.5, 1.0)], ("p", "B", 0): [(0.5, 1.0)],  # tie: both rank 1.5
        ("p", "A", 1): [(0.5, 1.0)], ("p", "B", 1): [(0.5, 3.0)],  # A 1, B 2
        ("q", "A", 0): [(0.5, 4.0)], ("q", "B", 0): [(0.5, 2.0)],  # A 2, B 1
    })
    across = across_benchmarks(regret_over_time(curves, experiments, grid_points=1))
    across = across.set_index("method")
    # A's rank: p mean(1.5, 1) = 1.25, q 2 -> (1.25 + 2) / 2; B: p 1.75, q 1 -> 1.375
    assert across.loc["A", "mean_rank"] == pytest.approx(1.625)
    assert across.loc["B", "mean_rank"] == pytest.approx(1.375)
    assert across.loc["A", "n_benchmarks"] == 2
    table = checkpoint_table(across.reset_index(), checkpoints=(1.0,))
    assert list(table["method"]) == ["B", "A"]  # sorted by final mean rank
    text = format_checkpoints(table, benchmark_references(curves, experiments))
    assert "p: optimum 0 (known)" in text and "rank@100%" in text


def finals_frame(values: dict[str, list[float]], benchmark: str = "b") -> pd.DataFrame:
    rows = [(benchmark, m, s, v, v) for m, vs in values.items() for s, v in enumerate(vs)]
    return pd.DataFrame(rows, columns=["benchmark", "method", "seed", "regret",
                                       "normalized_regret"])


def test_bootstrap_shows_a_consistent_win_and_pairs_by_seed() -> None:
    # A is better than B by exactly 1 on every seed, although seeds differ a lot from each other:
    # only pairing by seed makes the difference visible. Every resample's mean is -1.
    finals = finals_frame({"A": [0.0, 10.0, 20.0], "B": [1.0, 11.0, 21.0]})
    row = paired_bootstrap(finals).iloc[0]
    assert (row["method_a"], row["method_b"], row["n_pairs"]) == ("A", "B", 3)
    assert row["mean_difference"] == pytest.approx(-1.0)
    assert row["ci_low"] == pytest.approx(-1.0) and row["ci_high"] == pytest.approx(-1.0)
    assert row["verdict"] == "A better"
    assert "A beats B" in format_pairs(paired_bootstrap(finals))


def test_bootstrap_marks_an_unclear_difference_as_not_shown() -> None:
    # differences A - B: -2, +1, +0.5 -> mean -1/6; resamples include all -2 and all +1
    finals = finals_frame({"A": [0.0, 2.0, 1.5], "B": [2.0, 1.0, 1.0]})
    row = paired_bootstrap(finals).iloc[0]
    assert row["mean_difference"] == pytest.approx(-1 / 6)
    assert row["ci_low"] < 0 < row["ci_high"]
    assert row["verdict"] == "not shown"
    assert "A vs B: not shown" in format_pairs(paired_bootstrap(finals))


def test_bootstrap_is_reproducible_and_needs_two_pairs() -> None:
    finals = finals_frame({"A": [0.0, 2.0, 1.5, 0.2], "B": [2.0, 1.0, 1.0, 0.9]})
    first, second = paired_bootstrap(finals), paired_bootstrap(finals)
    pd.testing.assert_frame_equal(first, second)
    one_seed = finals_frame({"A": [0.0], "B": [1.0]})
    row = paired_bootstrap(one_seed).iloc[0]
    assert row["verdict"] == "not shown" and math.isnan(row["ci_low"])
    assert "needs 2+ paired seeds" in format_pairs(paired_bootstrap(one_seed))


def test_bootstrap_across_benchmarks_weighs_each_benchmark_once() -> None:
    # benchmark x: A - B = -1 on 2 seeds; benchmark y: A - B = +0.5 on 4 seeds -> (-1 + .5) / 2
    finals = pd.concat([finals_frame({"A": [0, 0], "B": [1, 1]}, "x"),
                        finals_frame({"A": [1, 1, 1, 1], "B": [0.5] * 4}, "y")])
    pairs = paired_bootstrap(finals).set_index("benchmark")
    assert list(pairs.index) == ["x", "y", ALL_BENCHMARKS]
    assert pairs.loc[ALL_BENCHMARKS, "mean_difference"] == pytest.approx(-0.25)
    assert pairs.loc[ALL_BENCHMARKS, "n_pairs"] == 6
    # in y, B is better: the row is turned round so that it reads "B beats A"
    y = pairs.loc["y"]
    assert (y["method_a"], y["method_b"], y["verdict"]) == ("B", "A", "A better")
    assert y["mean_difference"] == pytest.approx(-0.5)
    assert "B beats A" in format_pairs(paired_bootstrap(finals))


def test_final_regrets_are_the_last_grid_point() -> None:
    finals = final_regrets(regret_over_time(CURVES, EXPERIMENTS, grid_points=5))
    lo = finals[finals["benchmark"] == "lo"].set_index("method")
    assert lo.loc["A", "regret"] == 2.0 and lo.loc["B", "regret"] == 1.0


def test_cost_curves_count_each_trials_latest_cost_once() -> None:
    # trial 0 reports cost 0.1 then 0.3; trial 1 is unpriced at first, then 0.2
    df = pd.DataFrame({
        "benchmark": "b", "method": "A", "seed": 0, "metric": "loss", "mode": "min",
        "trial_id": [0, 1, 0, 1],
        "wallclock_time": [1.0, 2.0, 3.0, 4.0],
        "loss": [5.0, 4.0, 6.0, 1.0],
        "cost_usd": [0.1, None, 0.3, 0.2],
    })
    curves = cost_curves(df)
    assert np.allclose(curves["cost_usd"], [0.1, 0.1, 0.3, 0.5])
    assert np.allclose(curves["best"], [5.0, 4.0, 4.0, 1.0])
    assert cost_curves(df.drop(columns="cost_usd")).empty


def test_when_every_final_is_at_the_optimum_an_earlier_worse_best_is_not_zero_regret() -> None:
    # both methods end at the known optimum 0 (the reference is 0 too): A's first best, 3,
    # is still regret, and reads 1 until it reaches 0 at t=5
    experiments = experiments_frame([("z", "A", 0, "min", 0.0, 10.0),
                                     ("z", "B", 0, "min", 0.0, 10.0)])
    curves = curves_frame({("z", "A", 0): [(1.0, 3.0), (5.0, 0.0)],
                           ("z", "B", 0): [(1.0, 0.0)]})
    regret = regret_over_time(curves, experiments, grid_points=10)
    a = regret[regret["method"] == "A"].set_index("fraction")["normalized_regret"]
    assert a.loc[0.1] == 1.0 and a.loc[0.4] == 1.0 and a.loc[0.5] == 0.0
