"""A trial that ends before its first report still has a row: its status, and on SageMaker
what its job cost (before, such trials left no trace in results.jsonl and their cost was lost).
"""

from __future__ import annotations

import json
from pathlib import Path

from stbench.cli.main import main
from stbench.orchestration.store import RESULTS, experiment_dir


def test_trials_stopped_by_the_budget_before_reporting_have_a_row(tmp_path: Path) -> None:
    results = tmp_path / "results"
    code = main(["run", "--benchmark", "synthetic_curves", "--method", "RS",
                 "--experiment_tag", "slow", "--results_root", str(results), "--random_seed", "1",
                 "--n_workers", "2", "--max_wallclock_time", "3", "--epoch_duration", "30"])
    assert code == 0
    folder = experiment_dir(results, "slow", "synthetic_curves", "RS", 0)
    rows = [json.loads(line) for line in (folder / RESULTS).read_text().splitlines()]
    assert sorted(row["trial_id"] for row in rows) == [0, 1]
    assert all(row["status"] == "Stopped" and row["metrics"] == {} for row in rows)
