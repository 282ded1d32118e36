"""The method-comparison benchmarks run for real, and `stbench results` compares across them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from stbench.benchmarks.hartmann6_curves import observed_loss
from stbench.benchmarks.mlp_friedman import bayes_risk
from stbench.cli.main import main

TAG = "cmp"


def read_reports(folder: Path) -> list[dict]:
    """Rows with metrics (a trial stopped before its first report has a row without)."""
    rows = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    return [row for row in rows if row["metrics"]]


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two short studies under one tag: RS and ASHA on each comparison benchmark, 2 seeds."""
    root = tmp_path_factory.mktemp("results")
    common = ["--method", "RS", "ASHA", "--num_seeds", "2", "--n_workers", "2",
              "--experiment_tag", TAG, "--results_root", str(root), "--random_seed", "5"]
    assert main(["run", "--benchmark", "hartmann6_curves", "--max_wallclock_time", "3",
                 "--epochs", "3", "--epoch_duration", "0.05", *common]) == 0
    assert main(["run", "--benchmark", "mlp_friedman", "--max_wallclock_time", "5",
                 "--epochs", "2", *common]) == 0
    return root


def test_hartmann_reports_are_the_pure_curve_function(study: Path) -> None:
    """What a simulated back-end replays must be what the script reported."""
    folder = study / TAG / "hartmann6_curves" / "RS" / "0"
    rows = read_reports(folder)
    assert rows
    for row in rows:
        expected = observed_loss(row["config"], row["metrics"]["epoch"])
        assert row["metrics"]["loss"] == pytest.approx(expected, abs=1e-12)
        assert row["metrics"]["loss"] > -3.32237 - 0.5  # noise is small at any epoch
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["optimum"] == -3.32237


def test_friedman_trains_above_its_bayes_risk(study: Path) -> None:
    rows = read_reports(study / TAG / "mlp_friedman" / "ASHA" / "1")
    losses = [r["metrics"]["val_mse"] for r in rows]
    assert losses and all(math.isfinite(v) and v > bayes_risk() for v in losses)
    assert {r["metrics"]["epoch"] for r in rows} <= {1, 2}


def test_results_compare_across_the_two_benchmarks(study: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    capsys.readouterr()
    assert main(["results", "--experiment_tag", TAG, "--results_root", str(study)]) == 0
    out = capsys.readouterr().out
    assert "across benchmarks: normalized regret" in out
    assert "hartmann6_curves: optimum -3.32237 (known)" in out
    assert "mlp_friedman: optimum 0.993204 (known)" in out
    assert "(all benchmarks)" in out and "2 pairs" in out
    plots = study / TAG / "plots"
    assert f"plot: {plots / 'across_benchmarks.png'}" in out
    assert (plots / "across_benchmarks.png").read_bytes().startswith(b"\x89PNG")
