"""A user's own benchmark folder (script, YAML, requirements.txt installing a local wheel,
a data folder as input channel) on the Docker back-end with warm slots: the folder travels as
the `code` channel, the first trial on an instance installs the requirements and a trial on
a reused instance skips the install."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from user_benchmark import write_user_benchmark

from stbench.cli.main import main

pytestmark = pytest.mark.docker


def job_logs(folder: Path) -> dict[str, str]:
    return {path.stem: path.read_text() for path in sorted(folder.glob("jobs/*/logs/*.log"))}


def test_user_benchmark_runs_on_docker_warm_slots_installing_once(
        images: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    yaml = write_user_benchmark(tmp_path / "src", data=True)
    code = main(["run", "--benchmark", str(yaml), "--method", "RS", "--backend", "docker",
                 "--warm_pool", "--n_workers", "1", "--max_num_trials", "3",
                 "--max_wallclock_time", "120", "--experiment_tag", "mine",
                 "--results_root", str(tmp_path / "results")])
    assert code == 0, capsys.readouterr().err
    folder = tmp_path / "results" / "mine" / "my_bench" / "RS" / "0"
    rows = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    trials = {row["trial_id"]: row for row in rows}
    assert len(trials) == 3 and all(row["status"] == "Completed" for row in trials.values())
    for row in rows:  # the wheel's OFFSET, the data channel's scale, a file beside the script
        metrics, x = row["metrics"], row["config"]["x"]
        assert metrics["loss"] == pytest.approx(3 * (x - 0.25) ** 2 / metrics["epoch"])
        assert metrics["scale"] == 3 and metrics["helper"] == 7
    assert [bool(trials[t]["started_on_warm_pool_of"]) for t in sorted(trials)] == \
        [False, True, True]
    logs = list(job_logs(folder).values())
    assert len(logs) == 3
    assert "installed requirements.txt" in logs[0]
    assert all("already installed" in log and "pip:" not in log for log in logs[1:]), \
        "a trial on a reused instance skips the install"
    stored = list((tmp_path / "results" / "mine" / "code").glob("*.tar.gz"))
    assert len(stored) == 1, "the folder is stored once for the study, by its content"
