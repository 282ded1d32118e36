"""Runs Syne Tune 0.13's methods on a benchmark's curves or table, in simulated time.

Executed by bench/quality.py inside its own venv (build/st013-venv: syne-tune 0.13 needs
numpy < 1.27), never imported by stbench. Input: a JSON task file written by quality.py
(benchmark script or table file, config space as YAML-like dicts, budget, seeds); output: a
JSON file with every reported (simulated time, metric, trial id) per method and seed.

The simulation is set up as stbench's `--backend simulated` does it, so only the methods
differ: 0.13's own `UserBlackboxBackend` replays the benchmark's `curve(config, resource)`
(imported from the script) or, for a tabulated benchmark, 0.13's own `BlackboxTabular` built
from the .npz table quality.py exported (one final value and training time per recorded
repetition; the backend draws a repetition per trial from numpy's global RNG, seeded per
experiment). Start latency 0, time advances only with the simulation (real time spent in
the scheduler is not counted), and when every worker is busy the tuner jumps to the next
event instead of sleeping a fixed step. With `max_num_trials`, the scheduler proposes that
many trials and the tuner waits for them to end (stbench's --max_num_trials).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
from syne_tune import StoppingCriterion, Tuner
from syne_tune.backend.simulator_backend.simulator_backend import SimulatorConfig
from syne_tune.backend.simulator_backend.simulator_callback import SimulatorCallback
from syne_tune.backend.simulator_backend.time_keeper import SimulatedTimeKeeper
from syne_tune.blackbox_repository.blackbox import Blackbox
from syne_tune.blackbox_repository.blackbox_tabular import BlackboxTabular
from syne_tune.blackbox_repository.simulated_tabular_backend import UserBlackboxBackend
from syne_tune.config_space import (
    choice,
    finrange,
    logfinrange,
    lograndint,
    loguniform,
    ordinal,
    randint,
    uniform,
)
from syne_tune.optimizer.baselines import (
    ASHA,
    KDE,
    MOBSTER,
    REA,
    BayesianOptimization,
    RandomSearch,
)

ELAPSED = "st_elapsed_time"
DOMAINS = {"uniform": uniform, "loguniform": loguniform, "randint": randint,
           "lograndint": lograndint}


def config_space(raw: dict) -> dict:
    space = {}
    for name, value in raw.items():
        if isinstance(value, dict) and value.get("type") == "choice":
            space[name] = choice(value["values"])
        elif isinstance(value, dict) and value.get("type") == "ordinal":
            space[name] = ordinal(value["values"], kind=value.get("kind"))
        elif isinstance(value, dict) and value.get("type") in ("finrange", "logfinrange"):
            make = finrange if value["type"] == "finrange" else logfinrange
            space[name] = make(value["lower"], value["upper"], value["size"],
                               cast_int=value.get("cast_int", False))
        elif isinstance(value, dict):
            space[name] = DOMAINS[value["type"]](value["lower"], value["upper"])
        else:
            space[name] = value
    return space


class CurveBlackbox(Blackbox):
    def __init__(self, space: dict, metric: str, resource_attr: str, max_resource: int,
                 module):
        super().__init__(configuration_space=space, fidelity_space={resource_attr: None},
                         objectives_names=[metric, ELAPSED])
        self.metric, self.max_resource, self.module = metric, max_resource, module

    @property
    def fidelity_values(self):
        return np.arange(1, self.max_resource + 1)

    def _objective_function(self, configuration, fidelity=None, seed=None):
        seconds = getattr(self.module, "epoch_seconds", None)
        step = float(seconds(configuration) if callable(seconds)
                     else configuration.get("epoch_duration", 1.0))
        rows = np.array([[float(self.module.curve(configuration, r)[self.metric]), r * step]
                         for r in range(1, self.max_resource + 1)])
        if fidelity is None:
            return rows
        resource = int(next(iter(fidelity.values())))
        return dict(zip(self.objectives_names, rows[resource - 1], strict=True))


def table_blackbox(path: str, space: dict, metric: str) -> BlackboxTabular:
    """0.13's own tabular blackbox over the exported table: columns `hp_<name>` (one per
    hyperparameter, the values a config takes), `values` and `seconds` (configs x
    repetitions). Configs recorded fewer times than others repeat their repetitions in
    turn (2 of 6 columns: a, b, a, b, a, b), so a uniform draw of a column is a uniform draw
    of that config's repetitions, as stbench draws them."""
    import pandas as pd

    with np.load(path) as table:
        frame = pd.DataFrame({name: table[f"hp_{name}"].tolist() for name in space
                              if f"hp_{name}" in table.files})
        evaluations = np.stack([table["values"], table["seconds"]], axis=-1)[:, :, None, :]
    tabulated = {name: space[name] for name in frame.columns}
    return BlackboxTabular(hyperparameters=frame, configuration_space=tabulated,
                           fidelity_space={"trained": randint(1, 1)},
                           objectives_evaluations=evaluations, fidelity_values=np.array([1]),
                           objectives_names=[metric, ELAPSED])


class SimulationTimeKeeper(SimulatedTimeKeeper):
    def real_time_since_last_recent_exit(self) -> float:
        return 0.0


class JumpToNextEvent(SimulatorCallback):
    """Sleeping means: advance to the backend's next event (as stbench's loop does)."""

    def on_tuning_sleep(self, sleep_time: float):
        heap = self._tuner.trial_backend._simulator_state.event_heap
        now = self._time_keeper.time()
        self._time_keeper.advance_to(max(heap[0][0], now + 1e-9) if heap else now + 1.0)

    def on_trial_result(self, trial, status, result, decision):
        super().on_trial_result(trial, status, result, decision)
        self.reports.append((float(result["st_tuner_time"]), float(result[self.metric]),
                             int(trial.trial_id)))


def scheduler(method: str, task: dict, space: dict, seed: int):
    common = dict(config_space=space, metric=task["metric"], mode=task["mode"],
                  random_seed=seed)
    if "points_to_evaluate" in task:  # [] : no default config first (stbench's behaviour)
        common["points_to_evaluate"] = task["points_to_evaluate"]
    multi = dict(resource_attr=task["resource_attr"], max_t=task["max_resource"])
    if method == "ASHA":
        return ASHA(**common, **multi)
    if method == "MOBSTER":
        return MOBSTER(**common, **multi)
    if method == "BO":
        return BayesianOptimization(**common)
    if method == "RS":
        return RandomSearch(**common)
    if method == "REA":
        return REA(**common)
    if method == "TPE":  # 0.13's kernel-density (TPE-like) searcher; 0.16 calls it TPE
        return KDE(**common)
    raise ValueError(method)


def cap_trials(scheduler, max_num_trials: int | None) -> None:
    """After `max_num_trials` new trials the scheduler proposes nothing more, so that 0.13's
    tuner lets the running ones end and stops: the trials stbench's --max_num_trials gives."""
    if max_num_trials is None:
        return
    suggest, started = scheduler.suggest, []

    def capped(trial_id: int):
        if len(started) >= max_num_trials:
            return None
        suggestion = suggest(trial_id)
        if suggestion is not None and suggestion.spawn_new_trial_id:
            started.append(trial_id)
        return suggestion

    scheduler.suggest = capped


def run_one(task: dict, module, method: str, seed: int, noise_seed: int) -> list:
    space = config_space(task["config_space"])
    if task.get("table"):
        blackbox = table_blackbox(task["table"], space, task["metric"])
        np.random.seed(noise_seed)  # the backend's draw of a repetition per trial
    else:
        blackbox = CurveBlackbox({k: v for k, v in space.items()}, task["metric"],
                                 task["resource_attr"], task["max_resource"], module)
    zero = SimulatorConfig(delay_on_trial_result=0.0, delay_complete_after_final_report=0.0,
                           delay_complete_after_stop=0.0, delay_start=0.0, delay_stop=0.0)
    backend = UserBlackboxBackend(blackbox=blackbox, elapsed_time_attr=ELAPSED,
                                  max_resource_attr=task["max_resource_attr"],
                                  simulator_config=zero)
    backend._time_keeper = SimulationTimeKeeper()
    callback = JumpToNextEvent()
    callback.metric, callback.reports = task["metric"], []
    method_scheduler = scheduler(method, task, space, seed)
    cap_trials(method_scheduler, task.get("max_num_trials"))
    tuner = Tuner(trial_backend=backend, scheduler=method_scheduler,
                  stop_criterion=StoppingCriterion(max_wallclock_time=task["budget"]),
                  n_workers=task["n_workers"], sleep_time=0, callbacks=[callback],
                  results_update_interval=1e9, print_update_interval=1e9, save_tuner=False,
                  tuner_name=f"st013-{method.lower()}-{seed}", metadata={})
    tuner.run()
    return callback.reports


def main() -> None:
    task = json.loads(Path(sys.argv[1]).read_text())
    module = None
    if not task.get("table"):
        spec = importlib.util.spec_from_file_location("curves", task["script"])
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    out = {}
    for method in task["methods"]:
        for seed, scheduler_seed in zip(task["seeds"], task["scheduler_seeds"], strict=True):
            noise_seed = int(np.random.SeedSequence([scheduler_seed, 1]).generate_state(1)[0])
            out.setdefault(method, {})[str(seed)] = run_one(task, module, method,
                                                            scheduler_seed, noise_seed)
            print(f"st013 {task['benchmark']} {method} seed {seed}: "
                  f"{len(out[method][str(seed)])} reports", flush=True)
    Path(sys.argv[2]).write_text(json.dumps({"syne_tune": _version(), "runs": out}))


def _version() -> str:
    import syne_tune

    return syne_tune.__version__


if __name__ == "__main__":
    main()
