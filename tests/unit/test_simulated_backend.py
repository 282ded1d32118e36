"""`--backend simulated`: replayed curves in simulated time, from code or a recorded study."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestRegressor
from syne_tune.blackbox_repository.blackbox_surrogate import BlackboxSurrogate
from syne_tune.config_space import choice, loguniform, randint

from stbench.analysis.frame import load
from stbench.backends.simulated.backend import SimulatedBackend, prepare_simulation
from stbench.backends.simulated.sources import CurveBlackbox, StartLatency
from stbench.backends.simulated.surrogate_predictor import PipelinePredictor
from stbench.model.catalog import load_benchmark
from stbench.model.spec import ExperimentSpec
from stbench.orchestration.store import RESULTS, experiment_dir
from stbench.orchestration.study_runner import plan_study, run_study


def simulate(root: Path, tag: str, methods: tuple[str, ...] = ("ASHA",), **fields: object
             ) -> Path:
    values: dict = dict(benchmark="synthetic_curves", method=methods, backend="simulated",
                        experiment_tag=tag, results_root=str(root), random_seed=5,
                        max_wallclock_time=6.0)
    values.update(fields)
    plan = plan_study(ExperimentSpec(**values))
    outcomes = run_study(plan, progress_stream=open("/dev/null", "w"))  # noqa: SIM115
    assert all(o.status == "completed" for o in outcomes)
    return root / tag


def rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / RESULTS).read_text().splitlines()]


def test_same_seed_gives_the_same_rows(tmp_path: Path) -> None:
    simulate(tmp_path / "a", "same")
    simulate(tmp_path / "b", "same")
    first = experiment_dir(tmp_path / "a", "same", "synthetic_curves", "ASHA", 0)
    second = experiment_dir(tmp_path / "b", "same", "synthetic_curves", "ASHA", 0)
    assert rows(first) == rows(second)
    assert len(rows(first)) > 20  # trials really ran in the simulated 6 s


def test_time_is_start_latency_plus_epoch_times() -> None:
    benchmark = load_benchmark("synthetic_curves")
    curves = CurveBlackbox(benchmark, lambda config, r: {"loss": 1.0 / r}, lambda config: 2.0)
    backend = SimulatedBackend(curves, "epochs", StartLatency(cold=3.0), n_workers=1)
    trial = backend.start_trial({"x": 0.0, "log_lr": -1.0, "width": 8, "epochs": 3,
                                 "epoch_duration": 2.0, "failure_probability": 0.0})
    seen = []
    while len(seen) < 3:
        backend.wait_for_activity(10.0)
        _, results = backend.fetch_status_results([trial.trial_id])
        seen += [(r["epoch"], backend.clock.monotonic(), r["st_worker_time"]) for _, r in results]
    assert seen == [(1, 5.0, 2.0), (2, 7.0, 4.0), (3, 9.0, 6.0)]


def write_study(root: Path, tag: str) -> dict:
    """A recorded study: two configs, one run to 9 epochs, one stopped after 2."""
    folder = experiment_dir(root, tag, "synthetic_curves", "ASHA", 0)
    folder.mkdir(parents=True)
    spec = {"benchmark": "synthetic_curves", "n_workers": 2, "max_wallclock_time": 20,
            "extra_args": {}}
    (folder / "metadata.json").write_text(json.dumps({"benchmark": "synthetic_curves",
                                                      "spec": spec}))
    full = {"x": 1.0, "log_lr": -2.5, "width": 60, "epochs": 9, "epoch_duration": 0.5,
            "failure_probability": 0.0}
    short = {**full, "x": -2.0, "width": 3}
    lines = []
    for trial_id, (config, epochs) in enumerate([(full, 9), (short, 2)]):
        for epoch in range(1, epochs + 1):
            lines.append({"trial_id": trial_id, "status": "Completed", "config": config,
                          "wallclock_time": 1.0 + 0.5 * epoch, "worker_time": 0.5 * epoch,
                          "metrics": {"epoch": epoch, "loss": 1.0 / epoch + config["x"]}})
    (folder / RESULTS).write_text("".join(json.dumps(line) + "\n" for line in lines))
    return full


def test_recorded_configs_replay_and_others_come_from_the_surrogate(tmp_path: Path) -> None:
    full = write_study(tmp_path, "rec")
    simulation = prepare_simulation(load_benchmark("synthetic_curves"), "rec", tmp_path, None)
    curve = simulation.blackbox.curve_rows(full)
    assert curve[:, 0].tolist() == pytest.approx([1.0 / e + 1.0 for e in range(1, 10)])
    assert curve[-1, 1] == pytest.approx(4.5)  # nine recorded epochs of 0.5 s
    unseen = {**full, "x": 0.0, "width": 30}
    assert not simulation.blackbox.is_recorded(unseen)
    assert len(simulation.blackbox.curve_rows(unseen)) == 9
    assert simulation.start_latency.cold == pytest.approx(1.0)  # 1.0 s before each script
    described = simulation.describe()["surrogate"]
    assert described["configs"] == 2 and described["cv_rmse"] is not None
    assert "RandomForestRegressor" in simulation.summary()


def test_from_study_run_takes_the_study_defaults_and_analysis_reads_it(tmp_path: Path) -> None:
    write_study(tmp_path, "rec")
    plan = plan_study(ExperimentSpec(method=("RS", "ASHA"), backend="simulated",
                                     from_study="rec", experiment_tag="sim",
                                     results_root=str(tmp_path), random_seed=1))
    assert (plan.benchmark.name, plan.spec.n_workers, plan.spec.max_wallclock_time) == (
        "synthetic_curves", 2, 20)
    run_study(plan, progress_stream=open("/dev/null", "w"))  # noqa: SIM115
    results, experiments = load(tmp_path, "sim")
    assert set(experiments["method"]) == {"RS", "ASHA"}
    assert results["wallclock_time"].max() <= 20.0 + 1e-6
    meta = json.loads((experiment_dir(tmp_path, "sim", "synthetic_curves", "RS", 0)
                       / "metadata.json").read_text())
    assert meta["simulation"]["surrogate"]["model"].startswith("RandomForestRegressor")
    assert meta["simulation"]["time"] == "simulated"


def test_fast_surrogate_predictions_are_scikit_learns() -> None:
    """The simulated trial's curve comes from PipelinePredictor, not pipeline.predict (25x
    faster); the numbers must be the same, categorical values (unseen ones too) included."""
    space = {"lr": loguniform(1e-4, 1.0), "act": choice(["relu", "tanh", "elu"]),
             "width": randint(1, 64)}
    pipeline = BlackboxSurrogate.make_model_pipeline(
        space, {"epoch": randint(1, 9)}, RandomForestRegressor(n_estimators=10, random_state=0))
    rng = np.random.default_rng(0)

    def frame(n: int, acts: list[str]) -> pd.DataFrame:
        return pd.DataFrame({"lr": 10 ** rng.uniform(-4, 0, n), "act": rng.choice(acts, n),
                             "width": rng.integers(1, 64, n), "epoch": rng.integers(1, 10, n)})

    training = frame(300, ["relu", "tanh", "elu"])
    pipeline.fit(training, rng.normal(size=(300, 2)))
    predictor = PipelinePredictor(pipeline, training)
    assert predictor.fast
    query = frame(60, ["relu", "tanh", "elu", "gelu"])[["width", "epoch", "act", "lr"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "unknown categories": encoded as zeros
        expected = pipeline.predict(query[predictor.columns])
        got = predictor.predict({name: query[name].to_numpy() for name in query.columns})
    assert np.array_equal(got, expected)
