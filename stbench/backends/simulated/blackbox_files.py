"""Syne Tune blackbox-repository files a user already has, replayed by --backend simulated.

`--blackbox NAME[:TASK]` (or a benchmark YAML's `blackbox:` field) names them. NAME is a
folder holding the files (`metadata.json` among them), or a repository name such as `fcnet`,
looked up where Syne Tune 0.16 keeps them: its local repository (`~/.blackbox-repository/NAME`,
where `load_blackbox` puts a download) and the Hugging Face cache (a snapshot of
`synetune/blackbox-repository`). Nothing is ever downloaded: missing files are one line
naming where we looked. The files are read by Syne Tune's own reader
(`blackbox_tabular.deserialize`, parquet through fastparquet from the `[tabular]` extra), then
indexed as an `IndexedTable`, learning curves included, so multi-fidelity methods run on it.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from syne_tune.config_space import Categorical, Domain, choice

from stbench.backends.simulated.tables import TABULAR_EXTRA, IndexedTable, canonical
from stbench.model.benchmark import Benchmark
from stbench.model.benchmark_yaml import MAX_NAME
from stbench.model.errors import UserError

REPO_ID = "synetune/blackbox-repository"  # Syne Tune's dataset on the Hugging Face hub
# Syne Tune's default metrics (metadata "metric_default") and their direction, from its own
# benchmark definitions; other files need a benchmark YAML naming `metric` and `mode`
KNOWN_MODES = {"metric_valid_loss": "min", "metric_valid_error": "min",  # fcnet, nasbench201
               "val_accuracy": "max"}  # lcbench
FILES = ("metadata.json", "configspace.json", "fidelityspace.json", "hyperparameters.parquet",
         "objectives_evaluations.npy", "fidelities_values.npy")


def split_name(blackbox: str) -> tuple[str, str]:
    """`fcnet:protein_structure` -> ("fcnet", "protein_structure"); the task may be left out."""
    name, _, task = blackbox.partition(":")
    return name, task


def repository_folder() -> Path:
    """Syne Tune's local repository (read at call time, as Syne Tune defines it)."""
    from syne_tune.blackbox_repository.conversion_scripts import utils

    return Path(utils.repository_path)


def find_folder(name: str) -> Path:
    """The folder of a blackbox's files: a path, Syne Tune's repository or the HF cache."""
    looked = []
    path = Path(name).expanduser()
    if path.is_dir() or "/" in name or name.startswith("."):
        if (path / "metadata.json").is_file():
            return path.resolve()
        looked.append(str(path))
    if "/" not in name:
        local = repository_folder() / name
        if (local / "metadata.json").is_file():
            return local
        looked.append(str(local))
        from huggingface_hub import constants, try_to_load_from_cache

        cached = try_to_load_from_cache(REPO_ID, f"{name}/metadata.json", repo_type="dataset")
        if isinstance(cached, str):
            return Path(cached).parent
        looked.append(f"the Hugging Face cache {constants.HF_HUB_CACHE} ({REPO_ID})")
    raise UserError(f"--blackbox {name}: no Syne Tune blackbox files (metadata.json) in "
                    f"{'; '.join(looked)}; stbench never downloads them: put the files there "
                    "(e.g. Syne Tune's load_blackbox on a machine with network) or pass their "
                    "folder")


def read_metadata(folder: Path, name: str) -> dict[str, Any]:
    try:
        metadata = json.loads((folder / "metadata.json").read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"--blackbox {name}: cannot read {folder / 'metadata.json'}: {err}; "
                        "check the files") from None
    if not (folder / "hyperparameters.parquet").is_file():
        raise UserError(f"--blackbox {name}: {folder} holds no hyperparameters.parquet; only "
                        "tabular blackboxes (fcnet, nasbench201, lcbench, ...) can be replayed")
    missing = [f for f in FILES if not (folder / f).exists()]
    if missing:
        raise UserError(f"--blackbox {name}: {folder} lacks {', '.join(missing)}; copy the "
                        "blackbox's whole folder")
    return metadata


def task_of(metadata: dict[str, Any], blackbox: str) -> tuple[int, str]:
    """The task's index in the files; the only one when the name gives none."""
    tasks = [str(t) for t in metadata.get("task_names", [])]
    name, task = split_name(blackbox)
    if not task and len(tasks) == 1:
        return 0, tasks[0]
    if task not in tasks:
        listed = ", ".join(tasks[:20]) + (", ..." if len(tasks) > 20 else "")
        raise UserError(f"--blackbox {blackbox}: choose a task of {name} as {name}:TASK, one of "
                        f"{listed}")
    return tasks.index(task), task


def blackbox_benchmark(blackbox: str, base: Benchmark | None) -> Benchmark:
    """The benchmark a blackbox serves: `base`'s metric, mode and budget when a YAML names it,
    else the files' default metric; the config space and resource from the files."""
    from syne_tune.blackbox_repository.serialize import deserialize_configspace

    name, _ = split_name(blackbox)
    folder = find_folder(name)
    metadata = read_metadata(folder, blackbox)
    index, task = task_of(metadata, blackbox)
    space, fidelity = deserialize_configspace(str(folder))
    if not space or not fidelity or len(fidelity) != 1:
        raise UserError(f"--blackbox {blackbox}: {folder} needs configspace.json and one "
                        "fidelity in fidelityspace.json")
    resource_attr = next(iter(fidelity))
    levels = np.load(folder / "fidelities_values.npy", allow_pickle=False)
    max_attr = base.max_resource_attr if base and base.max_resource_attr else "max_resource"
    hyperparameters = read_hyperparameters(folder, blackbox)
    check_grid(blackbox, list(space), hyperparameters)
    config_space = {**grid_domains(space, hyperparameters),
                    **(base.config_space if base else {})}
    config_space[max_attr] = int(np.max(levels))
    objectives = [str(o) for o in metadata.get("objectives_names", [])]
    if base is not None:
        metric, mode = base.metric, base.mode
    else:
        metric = str(metadata.get("metric_default", ""))
        mode = KNOWN_MODES.get(metric, "")
        if not mode:
            raise UserError(f"--blackbox {blackbox}: its default metric {metric or '(none)'} has "
                            "no known direction; write a benchmark YAML with `blackbox: "
                            f"{blackbox}`, `metric:` (one of {', '.join(objectives)}) and "
                            "`mode:`, and pass it as --benchmark")
    if metric not in objectives:
        raise UserError(f"--blackbox {blackbox}: no objective '{metric}' in {folder}; its "
                        f"objectives: {', '.join(objectives)}")
    if base is not None:
        return replace(base, config_space=config_space, resource_attr=resource_attr,
                       max_resource_attr=max_attr, blackbox=blackbox, table="")
    budget, optimum = budget_and_optimum(folder, index, objectives, metric, mode, metadata)
    label = "".join(c if c.isalnum() or c in "_-" else "_"
                    for c in f"{Path(name).name}_{task}").strip("_-")[:MAX_NAME]
    return Benchmark(
        name=label or "blackbox", source=folder / "metadata.json", script=None,
        config_space=config_space, metric=metric, mode=mode, resource_attr=resource_attr,
        max_resource_attr=max_attr, max_wallclock_time=budget, n_workers=2,
        instance_type="ml.m5.large", description=f"Syne Tune blackbox {name}, task {task}",
        purpose="comparison", optimum=optimum,
        optimum_source="the best value recorded in the blackbox files over all "
                       "configurations, repetitions and resource levels",
        blackbox=blackbox,
    )


def budget_and_optimum(folder: Path, task: int, objectives: list[str], metric: str, mode: str,
                       metadata: dict[str, Any]) -> tuple[float, float]:
    """The tables' conventions (docs/benchmarks.md): 50 x the mean full training time, so
    about 100 trainings fit on 2 workers; the best recorded value as the optimum. Read from
    a memory map, so only the task's two columns are touched."""
    evaluations = np.load(folder / "objectives_evaluations.npy", mmap_mode="r")[task]
    elapsed = objectives.index(str(metadata.get("metric_elapsed_time", metric)))
    seconds = float(np.nanmean(evaluations[:, :, -1, elapsed]))
    values = evaluations[..., objectives.index(metric)]
    best = float(np.nanmin(values) if mode == "min" else np.nanmax(values))
    return float(f"{50 * seconds:.2g}") if seconds > 0 else 3600.0, best


def read_hyperparameters(folder: Path, blackbox: str) -> Any:
    """The recorded configurations, read as Syne Tune's reader does (fastparquet)."""
    import pandas as pd

    try:
        return pd.read_parquet(folder / "hyperparameters.parquet", engine="fastparquet")
    except ImportError:
        raise UserError(f"--blackbox {blackbox}: reading blackbox files needs fastparquet: "
                        f"install the extra with `{TABULAR_EXTRA}`") from None


def load_blackbox_table(benchmark: Benchmark) -> IndexedTable:
    """The task's recorded curves, read with Syne Tune's own deserializer and indexed."""
    from syne_tune.blackbox_repository.blackbox_tabular import deserialize

    name, _ = split_name(benchmark.blackbox)
    folder = find_folder(name)
    metadata = read_metadata(folder, benchmark.blackbox)
    _, task = task_of(metadata, benchmark.blackbox)
    tasks = deserialize(str(folder))
    source = tasks[task]
    elapsed = str(metadata.get("metric_elapsed_time", ""))
    if elapsed not in source.objectives_names:
        raise UserError(f"--blackbox {benchmark.blackbox}: metadata.json names no "
                        f"'metric_elapsed_time' among the objectives {source.objectives_names}")
    names = list(source.configuration_space)  # every column: fixed entries key rows too
    rows = {tuple(canonical(v) for v in values): index for index, values in
            enumerate(source.hyperparameters[names].itertuples(index=False, name=None))}
    columns = [source.objectives_names.index(benchmark.metric),
               source.objectives_names.index(elapsed)]
    values = source.objectives_evaluations[..., columns]
    counts = np.full(len(values), values.shape[1], dtype=np.int64)
    return IndexedTable({n: benchmark.config_space[n] for n in names}, benchmark.resource_attr,
                        np.asarray(source.fidelity_values), benchmark.metric, rows, values,
                        counts, f"Syne Tune blackbox {benchmark.blackbox} ({folder})")


def check_grid(blackbox: str, names: list[str], hyperparameters: Any) -> None:
    """Every configuration a scheduler can propose has a record: the table is the full grid
    of its columns' values (fcnet, NAS-Bench-201), not a sample of a continuous space."""
    recorded = len(hyperparameters[names].drop_duplicates())
    grid = math.prod(int(hyperparameters[name].nunique()) for name in names)
    if grid != recorded:
        raise UserError(f"--blackbox {blackbox}: {recorded} recorded configurations are not "
                        f"the full grid of their values ({grid}); stbench replays grid tables "
                        "only (no surrogate)")


def grid_domains(domains: dict[str, Domain], hyperparameters: Any) -> dict[str, Domain]:
    """Choice domains over the recorded values where the files give a range."""
    return {name: domain if isinstance(domain, Categorical)
            else choice(sorted(hyperparameters[name].unique().tolist()))
            for name, domain in domains.items()}
