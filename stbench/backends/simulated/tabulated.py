"""What a run of a tabulated benchmark (a `table` or `blackbox` one) needs before it starts:
the checks `plan_run` makes (simulated back-end only, full-fidelity methods on final values,
the `[tabular]` extra), and the blackbox its simulation replays."""

from __future__ import annotations

from stbench.backends.simulated.tables import IndexedTable, load_table, table_search_space
from stbench.model.backend_names import SIMULATED
from stbench.model.benchmark import Benchmark
from stbench.model.errors import UserError
from stbench.model.spec import ExperimentSpec


def check_tabulated(spec: ExperimentSpec, benchmark: Benchmark, multi_fidelity: list[str],
                    full_fidelity: list[str]) -> None:
    """One-line errors, before anything is written, for what a tabulated benchmark cannot
    serve; `multi_fidelity` are the spec's multi-fidelity methods, `full_fidelity` all the
    others."""
    if spec.backend != SIMULATED:
        raise UserError(f"benchmark '{benchmark.name}' replays recorded results: run it with "
                        f"--backend simulated (not {spec.backend})")
    if benchmark.table:
        table_search_space(benchmark.table)  # the [tabular] extra holds this table
        if benchmark.max_resource != 1:
            raise UserError(f"benchmark '{benchmark.name}' records final values only: "
                            f"--{benchmark.max_resource_attr} must be 1")
    if benchmark.max_resource == 1 and multi_fidelity:
        raise UserError(f"benchmark '{benchmark.name}' records final values only, so "
                        f"{', '.join(multi_fidelity)} (multi-fidelity) cannot run on it; "
                        f"use a full-fidelity method: {', '.join(full_fidelity)}")


def tabulated_blackbox(benchmark: Benchmark) -> IndexedTable:
    """The recorded results a simulation of `benchmark` replays."""
    if benchmark.table:
        return load_table(benchmark)
    from stbench.backends.simulated.blackbox_files import load_blackbox_table

    return load_blackbox_table(benchmark)
