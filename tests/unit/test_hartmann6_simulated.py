"""hartmann6_curves simulates from code: the simulated back-end replays exactly the losses
its script would report, so a comparison study needs no recorded run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stbench.benchmarks.hartmann6_curves import observed_loss
from stbench.cli.main import main
from stbench.orchestration.store import RESULTS, experiment_dir


def test_simulated_hartmann6_replays_the_scripts_losses(tmp_path: Path) -> None:
    assert main(["run", "--backend", "simulated", "--benchmark", "hartmann6_curves",
                 "--method", "ASHA", "--max_wallclock_time", "20", "--experiment_tag", "h6",
                 "--results_root", str(tmp_path), "--random_seed", "1"]) == 0
    folder = experiment_dir(tmp_path, "h6", "hartmann6_curves", "ASHA", 0)
    rows = [json.loads(line) for line in (folder / RESULTS).read_text().splitlines()]
    reports = [row for row in rows if row["metrics"]]
    assert len(reports) > 20
    for row in reports:
        assert row["metrics"]["loss"] == pytest.approx(
            observed_loss(row["config"], row["metrics"]["epoch"]), abs=1e-12)
