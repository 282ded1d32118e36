"""Syne Tune blackbox-repository files (`--blackbox`): a small blackbox written with Syne
Tune's own serializer replays through `stbench run --backend simulated`, learning curves
included, so ASHA stops trials early on it and BO runs full trainings; it is found in a
folder, Syne Tune's local repository or the Hugging Face cache, and never downloaded."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from syne_tune.blackbox_repository.blackbox_tabular import BlackboxTabular, serialize
from syne_tune.config_space import choice, randint

from stbench.cli.main import main
from stbench.orchestration.store import RESULTS, experiment_dir

pytest.importorskip("fastparquet", reason="the [tabular] extra: Syne Tune's parquet engine")
LEVELS = 9
SPACE = {"lr": [1e-4, 3.1622776e-3, 0.1], "width": [16, 32, 64, 128], "act": ["relu", "tanh"]}
OBJECTIVES = ["metric_valid_loss", "metric_elapsed_time", "metric_train_loss"]


def curves(task: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Every grid configuration, 3 repetitions, loss falling over 9 epochs towards a floor
    that depends on the configuration; cumulative seconds growing with the width."""
    rows = [dict(zip(SPACE, values, strict=True)) for values in itertools.product(*SPACE.values())]
    rng = np.random.default_rng(task)
    values = np.zeros((len(rows), 3, LEVELS, len(OBJECTIVES)))
    epochs = np.arange(1, LEVELS + 1)
    for i, row in enumerate(rows):
        floor = abs(np.log10(row["lr"]) + 2) + 16 / row["width"] + (row["act"] == "tanh") * 0.1
        for seed in range(3):
            values[i, seed, :, 0] = floor + 1.0 / epochs + rng.normal(0, 0.01)
            values[i, seed, :, 1] = np.cumsum(np.full(LEVELS, row["width"] / 16.0))
            values[i, seed, :, 2] = values[i, seed, :, 0] - 0.05
    return pd.DataFrame(rows), values


def write_blackbox(folder: Path) -> None:
    space = {name: choice(values) for name, values in SPACE.items()}
    tasks = {}
    for task in (0, 1):
        hyperparameters, values = curves(task)
        tasks[f"task{task}"] = BlackboxTabular(
            hyperparameters=hyperparameters, configuration_space=space,
            fidelity_space={"hp_epoch": randint(1, LEVELS)}, objectives_evaluations=values,
            fidelity_values=np.arange(1, LEVELS + 1), objectives_names=OBJECTIVES)
    folder.mkdir(parents=True, exist_ok=True)
    serialize(tasks, str(folder), metadata={"metric_elapsed_time": "metric_elapsed_time",
                                            "metric_default": "metric_valid_loss",
                                            "time_attr": "hp_epoch"})


def recorded(folder: Path, task: int, config: dict, level: int) -> set[float]:
    """The losses the files hold for a configuration at a level, over its repetitions."""
    frame, _ = curves(task)
    match = np.isclose(frame["lr"], config["lr"]) & (frame["width"] == config["width"]) & (
        frame["act"] == config["act"])
    (row,) = np.flatnonzero(match.to_numpy())
    stored = np.load(folder / "objectives_evaluations.npy")  # (tasks, rows, seeds, levels, objs)
    return {float(v) for v in stored[task, row, :, level - 1, 0]}


def test_asha_and_bo_run_on_blackbox_files_with_curves(tmp_path: Path) -> None:
    folder = tmp_path / "toy"
    write_blackbox(folder)
    assert main(["run", "--backend", "simulated", "--blackbox", f"{folder}:task1",
                 "--method", "ASHA", "BO", "--experiment_tag", "bb", "--max_wallclock_time",
                 "300", "--results_root", str(tmp_path / "results"), "--random_seed", "2"]) == 0
    by_method = {}
    for method in ("ASHA", "BO"):
        path = experiment_dir(tmp_path / "results", "bb", "toy_task1", method, 0)
        metadata = json.loads((path / "metadata.json").read_text())
        assert metadata["status"] == "completed"
        rows = [json.loads(line) for line in (path / RESULTS).read_text().splitlines()]
        reports = [row for row in rows if row["metrics"]]
        assert len(reports) > 10
        for row in reports:
            level = row["metrics"]["hp_epoch"]
            loss = row["metrics"]["metric_valid_loss"]
            assert loss in recorded(folder, 1, row["config"], level)
        by_method[method] = reports
    last = {}
    for row in by_method["ASHA"]:
        last[row["trial_id"]] = row["metrics"]["hp_epoch"]
    assert min(last.values()) < LEVELS <= max(last.values())  # stopped early, and promoted
    assert {row["metrics"]["hp_epoch"] for row in by_method["BO"]} == set(range(1, LEVELS + 1))


def test_a_yaml_benchmark_names_the_blackbox_and_its_metric(tmp_path: Path) -> None:
    """Its folder relative to the YAML file, its metric not the files' default."""
    write_blackbox(tmp_path / "toy")
    yaml_file = tmp_path / "toy_train.yaml"
    yaml_file.write_text("name: toy_train\nblackbox: ./toy:task0\nmetric: metric_train_loss\n"
                         "mode: min\nmax_wallclock_time: 100\nn_workers: 2\n"
                         "instance_type: ml.m5.large\n")
    assert main(["run", "--backend", "simulated", "--benchmark", str(yaml_file), "--method",
                 "MOBSTER", "--experiment_tag", "y", "--results_root", str(tmp_path / "r"),
                 "--random_seed", "1"]) == 0
    path = experiment_dir(tmp_path / "r", "y", "toy_train", "MOBSTER", 0)
    rows = [json.loads(line) for line in (path / RESULTS).read_text().splitlines()]
    assert rows and all("metric_train_loss" in row["metrics"] for row in rows if row["metrics"])


def test_found_in_the_hugging_face_cache_and_syne_tunes_repository(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants
    from syne_tune.blackbox_repository.conversion_scripts import utils

    snapshot = tmp_path / "hub" / "datasets--synetune--blackbox-repository" / "snapshots" / "a1"
    write_blackbox(snapshot / "toy")
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("a1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(utils, "repository_path", tmp_path / "empty-repository")
    args = ["run", "--backend", "simulated", "--blackbox", "toy:task0", "--method", "RS",
            "--max_wallclock_time", "50", "--random_seed", "1"]
    assert main([*args, "--results_root", str(tmp_path / "r1")]) == 0
    write_blackbox(tmp_path / "repository" / "toy")
    monkeypatch.setattr(utils, "repository_path", tmp_path / "repository")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "no-hub"))
    assert main([*args, "--results_root", str(tmp_path / "r2")]) == 0


def expect_error(capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str]) -> str:
    root = tmp_path / "results"
    assert main(["run", "--results_root", str(root), "--experiment_tag", "t", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("stbench: error: ")
    assert not root.exists()  # nothing created
    return err


def test_a_missing_blackbox_names_where_it_looked(capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants
    from syne_tune.blackbox_repository.conversion_scripts import utils

    monkeypatch.setattr(utils, "repository_path", tmp_path / "repository")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    err = expect_error(capsys, tmp_path, ["--backend", "simulated", "--blackbox",
                                          "fcnet:protein_structure", "--method", "RS"])
    assert str(tmp_path / "repository" / "fcnet") in err
    assert f"the Hugging Face cache {tmp_path / 'hub'}" in err and "never downloads" in err


def test_blackbox_errors_are_one_line(capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    folder = tmp_path / "toy"
    write_blackbox(folder)
    err = expect_error(capsys, tmp_path, ["--backend", "simulated", "--blackbox", str(folder),
                                          "--method", "RS"])
    assert "choose a task of" in err and "task0, task1" in err
    err = expect_error(capsys, tmp_path, ["--backend", "local", "--blackbox", f"{folder}:task0",
                                          "--method", "RS"])
    assert "--blackbox is for --backend simulated" in err
