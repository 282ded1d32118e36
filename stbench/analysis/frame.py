"""Read an experiment tag's result folders into pandas frames.

Layout (written by the orchestrator): ``<root>/<tag>/<benchmark>/<method>/<seed>/`` with
``metadata.json`` and ``results.jsonl``. This module only reads; it never writes there.
"""

from __future__ import annotations

import gc
import json
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from stbench.model.errors import UserError
from stbench.orchestration.store import RESULTS, UPDATES, merge_updates

logger = logging.getLogger(__name__)

EXPERIMENT_KEYS = ["experiment_tag", "benchmark", "method", "seed", "metric", "mode"]
# Columns every results frame has, in this order; metric/config/extra columns follow.
BASE_COLUMNS = [*EXPERIMENT_KEYS, "backend", "experiment_status", "trial_id", "status",
                "wallclock_time"]
EXPERIMENT_COLUMNS = [
    "experiment_tag",
    "benchmark",
    "method",
    "seed",
    "status",
    "metric",
    "mode",
    "backend",
    "elapsed_seconds",
    "n_trials",
    "n_reports",
    "optimum",
    "budget_seconds",
    "cost_estimated",
    "orchestrator_cost_usd",
    "orchestrator_state",
]
# orchestrator_state: "" (no orchestrator job: a local study), "billed", "running" (its cost
# so far), "unpriced" (its instance type has no price); written by `stbench results`' fetch
_RUNNING, _COST = "orchestrator_running", "orchestrator_cost_usd"
_RECORD_KEYS = {"trial_id", "status", "wallclock_time", "config", "metrics"}


@dataclass(frozen=True)
class _Experiment:
    """One seed folder: its metadata and the reports read so far."""

    path: Path
    metadata: dict[str, Any]
    records: list[dict[str, Any]]


def metric_column(metric: str) -> str:
    """Column holding metric ``metric``; prefixed only where the name clashes with a base column."""
    return f"metric_{metric}" if metric in BASE_COLUMNS else metric


def load_results(root: Path, experiment_tag: str) -> pd.DataFrame:
    """One row per metric report of every experiment under the tag (see module doc)."""
    return _results_frame(_scan(Path(root), experiment_tag))


def load_experiments(root: Path, experiment_tag: str) -> pd.DataFrame:
    """One row per experiment, including those with no reports yet (they show n_reports 0)."""
    return _experiments_frame(_scan(Path(root), experiment_tag))


def load(root: Path, experiment_tag: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both frames from a single pass, so counts agree while experiments are still running."""
    with _collector_paused():
        experiments = _scan(Path(root), experiment_tag)
        return _results_frame(experiments), _experiments_frame(experiments)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off while reports are parsed: they hold no cycles, and at
    64k reports its passes over the growing heap took a quarter of the loading time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _scan(root: Path, experiment_tag: str) -> list[_Experiment]:
    tag_dir = root / experiment_tag
    seed_dirs = sorted(
        (p.parent for p in tag_dir.glob("*/*/*/metadata.json") if _is_int(p.parent.name)),
        key=lambda d: (d.parent.parent.name, d.parent.name, int(d.name)),
    )
    if not seed_dirs:
        raise UserError(
            f"no results for experiment tag '{experiment_tag}' under {root}/: "
            f"run `stbench run --experiment_tag {experiment_tag} ...` first"
        )
    return [_read_experiment(d, experiment_tag) for d in seed_dirs]


def _is_int(name: str) -> bool:
    try:
        int(name)
    except ValueError:
        return False
    return True


def _read_experiment(seed_dir: Path, experiment_tag: str) -> _Experiment:
    meta_path = seed_dir / "metadata.json"
    try:
        raw = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        msg = str(err).replace("\n", " ")
        raise UserError(f"cannot read {meta_path}: {msg}; fix or delete that folder") from err
    if not isinstance(raw, dict):
        raise UserError(f"{meta_path} is not a JSON object; fix or delete that folder")
    # The folder names are the ground truth for where the experiment lives; metadata may
    # omit keys in a half-written experiment.
    metadata = {
        **raw,
        "experiment_tag": raw.get("experiment_tag", experiment_tag),
        "benchmark": raw.get("benchmark", seed_dir.parent.parent.name),
        "method": raw.get("method", seed_dir.parent.name),
        "seed": int(raw.get("seed", seed_dir.name)),
    }
    if metadata.get("mode") not in ("min", "max"):
        raise UserError(f"{meta_path} has mode {metadata.get('mode')!r}; it must be 'min' or 'max'")
    if not isinstance(metadata.get("metric"), str):
        raise UserError(f"{meta_path} has no 'metric' name; fix or delete that folder")
    # a running (or killed) experiment's trial statuses and costs are in its updates file
    records = merge_updates(_read_records(seed_dir / RESULTS), _read_records(seed_dir / UPDATES))
    return _Experiment(seed_dir, metadata, records)


def _read_records(path: Path) -> list[dict[str, Any]]:
    """Reports in file order; a missing file means no reports yet."""
    if not path.is_file():
        return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    try:  # one parse for the whole file: most of the time of reading a large tag
        parsed = json.loads("[" + ",".join(lines) + "]")
    except json.JSONDecodeError:
        parsed = _parse_lines(lines, path)
    return [record for record in parsed if isinstance(record, dict)]


def _parse_lines(lines: list[str], path: Path) -> list[Any]:
    """Line by line, skipping lines that do not parse (usually the last line of a running
    experiment, caught mid-write)."""
    records = []
    for lineno, line in enumerate(lines, start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            logger.warning("skipping unreadable line %d of %s", lineno, path)
    return records


_SCALAR_TYPES = {type(None), str, int, float, bool}
_ABSENT = object()  # a key a report does not have: an empty cell, unlike a stored null


def _columns(meta: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """One experiment's reports as columns (module doc of ``load_results``): built column by
    column rather than row by row, which is what makes a 64k-row tag load fast."""
    n = len(records)
    columns: dict[str, list[Any]] = {key: [meta[key]] * n for key in EXPERIMENT_KEYS}
    columns["backend"] = [backend_of(meta)] * n
    columns["experiment_status"] = [meta.get("status")] * n
    for key in ("trial_id", "status", "wallclock_time"):
        columns[key] = [r.get(key) for r in records]
    metrics = [m if isinstance(m := r.get("metrics"), dict) else {} for r in records]
    for key in dict.fromkeys(k for m in metrics for k in m):
        _add_scalars(columns, metric_column(key), [m.get(key, _ABSENT) for m in metrics])
    configs = [c if isinstance(c := r.get("config"), dict) else {} for r in records]
    for key in dict.fromkeys(k for c in configs for k in c):
        values = [c.get(key) for c in configs]
        if not set(map(type, values)) <= _SCALAR_TYPES:  # a list or dict: its JSON text
            values = [v if type(v) in _SCALAR_TYPES else json.dumps(v) for v in values]
        columns[f"config_{key}"] = values
    # Other scalar keys (worker_time, cost_usd, ...) unless a metric already took the name.
    taken = set(columns)
    for key in dict.fromkeys(k for r in records for k in r):
        if key not in _RECORD_KEYS and key not in taken:
            _add_scalars(columns, key, [r.get(key, _ABSENT) for r in records])
    return columns


def _add_scalars(columns: dict[str, list[Any]], name: str, values: list[Any]) -> None:
    """The column of the scalar values (others empty); none if no report has one."""
    types = set(map(type, values))
    if types <= _SCALAR_TYPES:  # the usual case, checked at C speed
        columns[name] = values
    elif types & _SCALAR_TYPES:
        columns[name] = [v if type(v) in _SCALAR_TYPES else None for v in values]


def _results_frame(experiments: list[_Experiment]) -> pd.DataFrame:
    parts = [_columns(e.metadata, e.records) for e in experiments if e.records]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in BASE_COLUMNS})
    names = list(dict.fromkeys([*BASE_COLUMNS, *(k for part in parts for k in part)]))
    merged: dict[str, list[Any]] = {name: [] for name in names}
    for part in parts:
        n = len(part["trial_id"])
        for name in names:
            merged[name].extend(part.get(name, [None] * n))
    df = pd.DataFrame(merged)
    df["seed"] = df["seed"].astype(int)
    df["trial_id"] = pd.to_numeric(df["trial_id"], errors="coerce").astype("Int64")
    df["wallclock_time"] = pd.to_numeric(df["wallclock_time"], errors="coerce").astype(float)
    return df.sort_values(
        ["benchmark", "method", "seed", "wallclock_time"], kind="stable"
    ).reset_index(drop=True)


def _dtype(column: str) -> str:
    return {"seed": "int64", "trial_id": "Int64", "wallclock_time": "float64"}.get(column, "object")


def _finite_or_nan(value: Any) -> float:
    """A number from metadata, NaN when absent or not a finite number (older studies)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value) if math.isfinite(value) else math.nan


def _spec_field(meta: dict[str, Any], name: str) -> Any:
    spec = meta.get("spec")
    return spec.get(name) if isinstance(spec, dict) else None


def backend_of(meta: dict[str, Any]) -> str:
    """Where the trials ran (``local``, ``docker``, ``sagemaker``, ``simulated``): whether
    ``wallclock_time`` is real or simulated seconds. "" where the metadata does not say."""
    backend = _spec_field(meta, "backend")
    return backend if isinstance(backend, str) else ""


def _orchestrator_state(meta: dict[str, Any]) -> str:
    if _COST not in meta:
        return ""
    if math.isnan(_finite_or_nan(meta[_COST])):
        return "unpriced"
    return "running" if meta.get(_RUNNING) else "billed"


def _experiments_frame(experiments: list[_Experiment]) -> pd.DataFrame:
    rows = []
    for e in experiments:
        meta = e.metadata
        trial_ids = {r.get("trial_id") for r in e.records} - {None}
        elapsed = meta.get("elapsed_seconds")
        rows.append(
            {
                "experiment_tag": meta["experiment_tag"],
                "benchmark": meta["benchmark"],
                "method": meta["method"],
                "seed": meta["seed"],
                "status": meta.get("status"),
                "metric": meta["metric"],
                "mode": meta["mode"],
                "backend": backend_of(meta),
                "elapsed_seconds": float(elapsed) if elapsed is not None else math.nan,
                "n_trials": len(trial_ids),
                "n_reports": len(e.records),
                "optimum": _finite_or_nan(meta.get("optimum")),
                "budget_seconds": _finite_or_nan(_spec_field(meta, "max_wallclock_time")),
                # trials priced at a SageMaker type's price for local or simulated seconds
                "cost_estimated": meta.get("cost_estimated") is True,
                "orchestrator_cost_usd": _finite_or_nan(meta.get(_COST)),
                "orchestrator_state": _orchestrator_state(meta),
            }
        )
    return pd.DataFrame(rows, columns=EXPERIMENT_COLUMNS)
