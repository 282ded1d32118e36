"""Runs Syne Tune 0.13's MOBSTER, BO and ASHA on a benchmark's curves, in simulated time.

Executed by bench/quality.py inside its own venv (build/st013-venv: syne-tune 0.13 needs
numpy < 1.27), never imported by stbench. Input: a JSON task file written by quality.py
(benchmark script, config space as YAML-like dicts, budget, seeds); output: a JSON file with
every reported (simulated time, metric) per method and seed.

The simulation is set up as stbench's `--backend simulated` does it, so only the methods
differ: 0.13's own `UserBlackboxBackend` replays the benchmark's `curve(config, resource)`
(imported from the script), start latency 0, time advances only with the simulation
(real time spent in the scheduler is not counted), and when every worker is busy the tuner
jumps to the next event instead of sleeping a fixed step.
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
from syne_tune.blackbox_repository.simulated_tabular_backend import UserBlackboxBackend
from syne_tune.config_space import choice, lograndint, loguniform, randint, uniform
from syne_tune.optimizer.baselines import ASHA, MOBSTER, BayesianOptimization

ELAPSED = "st_elapsed_time"
DOMAINS = {"uniform": uniform, "loguniform": loguniform, "randint": randint,
           "lograndint": lograndint}


def config_space(raw: dict) -> dict:
    space = {}
    for name, value in raw.items():
        if isinstance(value, dict) and value.get("type") == "choice":
            space[name] = choice(value["values"])
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
        self.reports.append((float(result["st_tuner_time"]), float(result[self.metric])))


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
    raise ValueError(method)


def run_one(task: dict, module, method: str, seed: int) -> list:
    space = config_space(task["config_space"])
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
    tuner = Tuner(trial_backend=backend, scheduler=scheduler(method, task, space, seed),
                  stop_criterion=StoppingCriterion(max_wallclock_time=task["budget"]),
                  n_workers=task["n_workers"], sleep_time=0, callbacks=[callback],
                  results_update_interval=1e9, print_update_interval=1e9, save_tuner=False,
                  tuner_name=f"st013-{method.lower()}-{seed}", metadata={})
    tuner.run()
    return callback.reports


def main() -> None:
    task = json.loads(Path(sys.argv[1]).read_text())
    spec = importlib.util.spec_from_file_location("curves", task["script"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = {}
    for method in task["methods"]:
        for seed, scheduler_seed in zip(task["seeds"], task["scheduler_seeds"], strict=True):
            out.setdefault(method, {})[str(seed)] = run_one(task, module, method, scheduler_seed)
            print(f"st013 {task['benchmark']} {method} seed {seed}: "
                  f"{len(out[method][str(seed)])} reports", flush=True)
    Path(sys.argv[2]).write_text(json.dumps({"syne_tune": _version(), "runs": out}))


def _version() -> str:
    import syne_tune

    return syne_tune.__version__


if __name__ == "__main__":
    main()
