"""`--backend simulated`: trials replay learning curves in simulated time.

Syne Tune's `UserBlackboxBackend` does the simulation (its event heap and time keeper, its
pause/resume from the resource a trial was paused at); this subclass adds what our event
loop needs (`EventBackend`: busy trials, waiting, annotations) and a clock for the loop:

- `wait_for_activity` jumps the simulated time to the next event instead of sleeping;
- the time keeper ignores the real time spent between backend calls (Syne Tune counts it as
  scheduler time), so one seed gives the same results on any machine and a method's decision
  time costs nothing: every method is cut at the same simulated budget;
- each trial starts after a start latency (cold, then warm once every worker has run a
  trial, when the source recorded warm starts), then follows its curve's epoch times.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from syne_tune.backend.simulator_backend import simulator_backend
from syne_tune.backend.simulator_backend.events import StartEvent
from syne_tune.backend.simulator_backend.simulator_backend import SimulatorConfig
from syne_tune.backend.simulator_backend.time_keeper import SimulatedTimeKeeper
from syne_tune.backend.trial_status import Status
from syne_tune.blackbox_repository.blackbox import Blackbox
from syne_tune.blackbox_repository.simulated_tabular_backend import UserBlackboxBackend

from stbench.backends.simulated.sources import ELAPSED, StartLatency, code_curves, load_recorded
from stbench.backends.simulated.surrogate import RecordedBlackbox, SurrogateFit
from stbench.backends.without_jobs import WithoutJobs
from stbench.model.benchmark import Benchmark
from stbench.model.errors import UserError

RECEIVE_TIMESTAMP = "st_receive_timestamp"
WORKER_TIME = "st_worker_time"
SURROGATE_SEED = 0  # one fit per study, the same in every run of it
NO_DELAYS = SimulatorConfig(delay_on_trial_result=0.0, delay_complete_after_final_report=0.0,
                            delay_complete_after_stop=0.0, delay_start=0.0, delay_stop=0.0)


class SimulationTimeKeeper(SimulatedTimeKeeper):
    """Simulated time that only the simulation advances (no real time between calls)."""

    def real_time_since_last_recent_exit(self) -> float:
        return 0.0


@dataclass(frozen=True)
class SimulatedClock:
    """The experiment loop's clock: seconds of simulated time since the start."""

    time_keeper: SimulatedTimeKeeper
    start_epoch: float

    def time(self) -> float:
        return self.start_epoch + self.time_keeper.time()

    def monotonic(self) -> float:
        return self.time_keeper.time()


class SimulatedBackend(WithoutJobs, UserBlackboxBackend):
    """Trials as replays of `blackbox`'s curves; `first_trial_id` allows --resume."""

    def __init__(self, blackbox: Blackbox, max_resource_attr: str | None,
                 start_latency: StartLatency, n_workers: int, first_trial_id: int = 0,
                 trial_seeds: Callable[[int], int] | None = None):
        super().__init__(blackbox=blackbox, elapsed_time_attr=ELAPSED,
                         max_resource_attr=max_resource_attr, simulator_config=NO_DELAYS)
        self._time_keeper = SimulationTimeKeeper()
        self._time_keeper.start_of_time()
        self.clock = SimulatedClock(self._time_keeper,
                                    self._time_keeper.start_time_stamp.timestamp())
        self.start_latency = start_latency
        self.n_workers = n_workers
        self.trial_ids.extend(range(first_trial_id))  # ids already used before a resume
        self._starts = 0
        self._latency_of: dict[int, float] = {}
        self.trial_seeds = trial_seeds  # a table's recorded repetition per trial (tables.py)

    # --- scheduling with a start latency ---------------------------------------------------

    def _schedule(self, trial_id: int, config: dict) -> None:
        self._process_events_until_now()
        latency = self._next_latency()
        self._latency_of[trial_id] = latency
        self._simulator_state.push(StartEvent(trial_id=trial_id),
                                   event_time=self._time_keeper.time() + latency)
        self._busy_trial_ids.add(trial_id)  # busy from now on: a worker is taken

    def _next_latency(self) -> float:
        warm = self.start_latency.warm
        latency = warm if warm is not None and self._starts >= self.n_workers else (
            self.start_latency.cold)
        self._starts += 1
        return float(latency)

    def _run_job_and_collect_results(self, trial_id: int,
                                     config: dict | None = None) -> tuple[str, list[dict]]:
        if self.trial_seeds is not None:  # Syne Tune queries the blackbox with `_seed`
            self._seed = self.trial_seeds(trial_id)
        return super()._run_job_and_collect_results(trial_id, config)

    def _process_on_trial_result_event(self, time_event: float, event: Any) -> None:
        result = event.result
        for key, value in result.items():  # numpy scalars from the blackbox, for JSON rows
            if isinstance(value, np.generic):
                result[key] = value.item()
        result[RECEIVE_TIMESTAMP] = self.clock.start_epoch + time_event
        result[WORKER_TIME] = round(float(result[ELAPSED]), 6)
        super()._process_on_trial_result_event(time_event=time_event, event=event)

    @staticmethod
    def _debug_message(event_name: str, time: float, trial_id: int, pushed: bool = False,
                       **kwargs: Any) -> None:
        """Syne Tune formats a debug line for every event, logged or not: only when logged."""
        if simulator_backend.logger.isEnabledFor(logging.DEBUG):
            UserBlackboxBackend._debug_message(event_name, time, trial_id, pushed, **kwargs)

    # --- what the experiment loop needs beyond TrialBackend --------------------------------

    def busy_trial_ids(self) -> list[tuple[int, str]]:
        self._process_events_until_now()
        return [(trial_id, Status.in_progress) for trial_id in sorted(self._busy_trial_ids)]

    def wait_for_activity(self, timeout: float) -> None:
        """Jump to the next event, or by `timeout` if none comes sooner."""
        now = self._time_keeper.time()
        target = now + max(0.0, timeout)
        heap = self._simulator_state.event_heap
        if heap:
            target = min(target, heap[0][0])
        self._time_keeper.advance_to(max(target, now + 1e-9))
        self._process_events_until_now()

    def failure_reason(self, trial_id: int) -> str:
        return ""

    def trial_annotations(self, trial_id: int) -> dict[str, Any]:
        return {"simulated_start_seconds": self._latency_of.get(trial_id)}

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class Simulation:
    """What `check_backend` prepares once per study: the curves, start latency and source."""

    blackbox: Blackbox
    start_latency: StartLatency
    source: str
    surrogate: SurrogateFit | None = None

    def describe(self) -> dict[str, Any]:
        """Recorded in every experiment's metadata as `simulation`."""
        return {"source": self.source, "start_latency": self.start_latency.describe(),
                "surrogate": self.surrogate.describe() if self.surrogate else None,
                "time": "simulated"}

    def summary(self) -> str:
        text = (f"simulated time: curves from {self.source}; start latency "
                f"{self.start_latency.cold:g} s")
        if self.start_latency.warm is not None:
            text += f" cold, {self.start_latency.warm:g} s warm"
        text += f" ({self.start_latency.source})"
        fit = self.surrogate
        if fit is not None:
            error = "n/a (one config)" if fit.cv_rmse is None else f"{fit.cv_rmse:.4g}"
            text += (f"; unrecorded configs from {fit.model}, fit on {fit.rows} reports of "
                     f"{fit.configs} configs, {fit.cv_folds}-fold CV RMSE {error} "
                     f"(metric std {fit.metric_std:.4g})")
        return text


def prepare_simulation(benchmark: Benchmark, from_study: str | None, results_root: Path,
                       start_seconds: float | None) -> Simulation:
    """A recorded study's curves (with a surrogate), else the benchmark's curves in code."""
    flag = None if start_seconds is None else StartLatency(
        cold=start_seconds, source="--simulated_start_seconds")
    if from_study:
        recorded = load_recorded(results_root, from_study, benchmark)
        blackbox = RecordedBlackbox(benchmark, recorded, SURROGATE_SEED)
        return Simulation(blackbox, flag or recorded.start_latency(),
                          f"study {from_study} ({recorded.experiments} experiments, "
                          f"{len(recorded.curves)} configs)", blackbox.fit)
    if benchmark.tabulated:
        from stbench.backends.simulated.tabulated import tabulated_blackbox

        table = tabulated_blackbox(benchmark)
        return Simulation(table, flag or StartLatency(), table.source)
    curves = code_curves(benchmark)
    if curves is None:
        raise UserError(
            f"--backend simulated needs recorded curves or curves in code: pass --from_study "
            f"TAG (a study of {benchmark.name} run before), or define curve(config, resource) "
            f"in {benchmark.script.name} (see docs/simulated.md)"
        )
    return Simulation(curves, flag or StartLatency(), f"{benchmark.script.name} curve()")
