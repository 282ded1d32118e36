"""Where `--backend simulated` gets its learning curves: a benchmark's code, or a recorded study.

Both become a Syne Tune `Blackbox` whose objectives are the benchmark's metric and the
cumulative seconds since the trial's start, one row per resource level, which is what
Syne Tune's `UserBlackboxBackend` replays in simulated time.

Curves in code (the convention a benchmark script follows to be simulated without a study):

- `curve(config, resource) -> dict[str, float]`: the metrics the script reports after
  `resource` units (epochs), the benchmark's metric among them. Deterministic: noise, if
  any, is a pure function of (config, resource), so a simulation reproduces a real run.
- `epoch_seconds(config) -> float` (optional): seconds one resource unit takes; without it,
  the config's `epoch_duration` entry.

A recorded study (`--from_study TAG`) gives every (config, resource) it reported, with the
seconds each epoch took (from `worker_time`, the seconds since the trial's script started).
Configurations it never reported, or resources beyond where a trial was stopped, come from a
scikit-learn surrogate fit on (config, resource), see `surrogate.py`.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np
from syne_tune.blackbox_repository.blackbox import Blackbox
from syne_tune.config_space import Domain

from stbench.model.benchmark import Benchmark
from stbench.model.errors import UserError
from stbench.model.spec import ExperimentSpec

ELAPSED = "st_elapsed_time"  # cumulative seconds since the trial's start; `st_` keys stay
# out of the recorded metrics


@dataclass(frozen=True)
class StartLatency:
    """Seconds from a trial's start to its script's start: cold, and on a warm instance."""

    cold: float = 0.0
    warm: float | None = None  # None: every start is cold
    source: str = "none given (0 s)"

    def describe(self) -> dict[str, Any]:
        return {"cold_seconds": self.cold, "warm_seconds": self.warm, "source": self.source}


class ResourceCurvesBlackbox(Blackbox):
    """A Syne Tune blackbox over resources 1..max_resource whose objectives are the metric and
    the cumulative seconds; subclasses say how a config's curve is made (`curve_rows`)."""

    def __init__(self, benchmark: Benchmark):
        self.metric = benchmark.metric
        self.resource_attr = benchmark.resource_attr
        self.max_resource = benchmark.max_resource
        super().__init__(configuration_space=dict(benchmark.config_space),
                         fidelity_space={self.resource_attr: None},
                         objectives_names=[self.metric, ELAPSED])

    @property
    def fidelity_values(self) -> np.ndarray:
        return np.arange(1, self.max_resource + 1)

    def _objective_function(self, configuration: dict[str, Any], fidelity: dict | None = None,
                            seed: int | None = None) -> Any:
        rows = self.curve_rows(configuration)
        if fidelity is None:
            return rows
        resource = int(next(iter(fidelity.values())))
        return dict(zip(self.objectives_names, rows[resource - 1], strict=True))

    def curve_rows(self, config: dict[str, Any]) -> np.ndarray:
        """(max_resource, 2): metric and cumulative seconds per resource level."""
        raise NotImplementedError


class CurveBlackbox(ResourceCurvesBlackbox):
    """A benchmark's curves in code (see the module doc)."""

    def __init__(self, benchmark: Benchmark,
                 curve: Callable[[dict[str, Any], int], dict[str, float]],
                 seconds: Callable[[dict[str, Any]], float]):
        super().__init__(benchmark)
        self._curve, self._seconds = curve, seconds

    def curve_rows(self, config: dict[str, Any]) -> np.ndarray:
        step = float(self._seconds(config))
        return np.array([[float(self._curve(config, r)[self.metric]), r * step]
                         for r in range(1, self.max_resource + 1)])


def code_curves(benchmark: Benchmark) -> ScriptCurves | None:
    """The benchmark script's curves, if it defines `curve` (see the module doc)."""
    module = _load_module(benchmark.script)
    curve = getattr(module, "curve", None)
    if not callable(curve):
        return None
    seconds = getattr(module, "epoch_seconds", None)
    if not callable(seconds):
        seconds = _epoch_duration
    return ScriptCurves(benchmark, curve, seconds)


class ScriptCurves(CurveBlackbox):
    """A benchmark script's curves. The script is imported by path, so its functions cannot
    be pickled: a pickle holds the benchmark and imports the script again where it is loaded
    (a worker process of a parallel study, see orchestration/parallel_study.py)."""

    def __init__(self, benchmark: Benchmark,
                 curve: Callable[[dict[str, Any], int], dict[str, float]],
                 seconds: Callable[[dict[str, Any]], float]):
        super().__init__(benchmark, curve, seconds)
        self.benchmark = benchmark

    def __reduce__(self) -> tuple[Any, ...]:
        return (code_curves, (self.benchmark,))


def _epoch_duration(config: dict[str, Any]) -> float:
    return float(config.get("epoch_duration", 1.0))


def _load_module(script: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"stbench_curves_{script.stem}", script)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- recorded studies --------------------------------------------------------------------


@dataclass
class RecordedCurves:
    """Every report of a study on one benchmark, by configuration."""

    tag: str
    benchmark: str
    domains: tuple[str, ...]  # the tuned config entries (the lookup key)
    # key -> resource -> (metric, epoch seconds); several trials of one config are averaged
    curves: dict[tuple, dict[int, tuple[float, float]]] = field(default_factory=dict)
    configs: dict[tuple, dict[str, Any]] = field(default_factory=dict)
    start_gaps: list[float] = field(default_factory=list)  # cold starts, seconds
    warm_gaps: list[float] = field(default_factory=list)
    experiments: int = 0

    def key(self, config: dict[str, Any]) -> tuple:
        return tuple(_key_value(config.get(name)) for name in self.domains)

    def start_latency(self) -> StartLatency:
        if not self.start_gaps:
            return StartLatency(source=f"study {self.tag} shows no start (0 s)")
        warm = median(self.warm_gaps) if self.warm_gaps else None
        return StartLatency(cold=round(median(self.start_gaps), 3),
                            warm=None if warm is None else round(warm, 3),
                            source=f"medians recorded in study {self.tag}")


def _key_value(value: Any) -> Any:
    return round(float(value), 10) if isinstance(value, (int, float)) else value


def study_experiments(results_root: Path, tag: str) -> list[Path]:
    """The experiment folders of a study; a one-line error naming the fix if there are none."""
    root = Path(results_root) / tag
    folders = sorted(p.parent for p in root.glob("*/*/*/metadata.json"))
    if not folders:
        known = sorted(p.name for p in Path(results_root).glob("*") if p.is_dir())
        hint = f"; studies there: {', '.join(known[:8])}" if known else ""
        raise UserError(f"--from_study {tag}: no recorded study in {root}{hint}; "
                        "run it first or pass --results_root")
    return folders


def recorded_spec(results_root: Path, tag: str) -> dict[str, Any]:
    """The spec the study ran with (benchmark, n_workers, budget, fixed values)."""
    benchmarks, spec = set(), {}
    for folder in study_experiments(results_root, tag):
        metadata = json.loads((folder / "metadata.json").read_text())
        benchmarks.add(metadata.get("benchmark"))
        spec = metadata.get("spec") or spec
    if len(benchmarks) > 1:
        names = ", ".join(sorted(map(str, benchmarks)))
        raise UserError(f"--from_study {tag} holds several benchmarks ({names}); "
                        "pick one with --benchmark")
    return spec


def with_study_defaults(spec: ExperimentSpec) -> ExperimentSpec:
    """`--from_study`: the study's benchmark, workers, budget and fixed benchmark values,
    where the command line gives none."""
    if not spec.from_study:
        return spec
    recorded = recorded_spec(Path(spec.results_root), spec.from_study)
    return replace(
        spec,
        benchmark=spec.benchmark or recorded.get("benchmark", ""),
        n_workers=spec.n_workers or recorded.get("n_workers"),
        max_wallclock_time=spec.max_wallclock_time or recorded.get("max_wallclock_time"),
        extra_args={**(recorded.get("extra_args") or {}), **spec.extra_args},
    )


def load_recorded(results_root: Path, tag: str, benchmark: Benchmark) -> RecordedCurves:
    domains = tuple(k for k, v in benchmark.config_space.items() if isinstance(v, Domain))
    recorded = RecordedCurves(tag, benchmark.name, domains)
    sums: dict[tuple, dict[int, list[tuple[float, float]]]] = {}
    for folder in study_experiments(results_root, tag):
        if folder.parent.parent.name != benchmark.name:
            continue
        rows = _read_rows(folder / "results.jsonl")
        recorded.experiments += 1
        _add_start_gaps(recorded, rows)
        for trial_rows in _by_trial(rows).values():
            key = recorded.key(trial_rows[0]["config"])
            recorded.configs.setdefault(key, {k: trial_rows[0]["config"].get(k) for k in domains})
            for resource, value, seconds in _epochs(trial_rows, benchmark):
                sums.setdefault(key, {}).setdefault(resource, []).append((value, seconds))
    if not sums:
        raise UserError(f"--from_study {tag}: no report of '{benchmark.metric}' for "
                        f"{benchmark.name} in {Path(results_root) / tag}")
    for key, by_resource in sums.items():
        recorded.curves[key] = {r: (float(np.mean([v for v, _ in vals])),
                                    float(np.mean([s for _, s in vals])))
                                for r, vals in by_resource.items()}
    return recorded


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _by_trial(rows: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    trials: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        trials.setdefault(int(row["trial_id"]), []).append(row)
    return trials


def _epochs(rows: list[dict[str, Any]], benchmark: Benchmark) -> list[tuple[int, float, float]]:
    """(resource, metric, seconds of that epoch) per report; a resumed trial's process
    restarts its worker_time, so a drop means the epoch's seconds are the new worker_time."""
    out, previous = [], 0.0
    for row in rows:
        metrics = row.get("metrics") or {}
        value, resource = metrics.get(benchmark.metric), metrics.get(benchmark.resource_attr)
        worker = row.get("worker_time")
        if not isinstance(value, (int, float)) or resource is None:
            continue
        worker = float(worker) if isinstance(worker, (int, float)) else None
        seconds = float("nan") if worker is None else (
            worker - previous if worker >= previous else worker)
        previous = worker if worker is not None else previous
        out.append((int(resource), float(value), seconds))
    return out


def _add_start_gaps(recorded: RecordedCurves, rows: list[dict[str, Any]]) -> None:
    """A trial's start latency: its script's start (first report's time minus its
    worker_time) minus the last moment before it when a worker became free (another trial's
    last report), or the experiment's start. Trials started on a warm pool count as warm."""
    trials = _by_trial(rows)
    ends = sorted(float(r[-1]["wallclock_time"]) for r in trials.values())
    for trial_rows in trials.values():
        first = next((r for r in trial_rows if isinstance(r.get("worker_time"), (int, float))),
                     None)
        if first is None:
            continue
        script_start = float(first["wallclock_time"]) - float(first["worker_time"])
        freed = max((e for e in ends if e <= script_start), default=0.0)
        gap = max(0.0, script_start - freed)
        warm = bool(trial_rows[-1].get("started_on_warm_pool_of"))
        (recorded.warm_gaps if warm else recorded.start_gaps).append(gap)
