"""A method's own computations in a real (not simulated) orchestrator run on one BLAS and
OpenMP thread, so a GP fit does not spin threads against the trials on the same machine; the
orchestrator process keeps its thread counts outside those calls (a trial supervisor forked
later keeps them too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from stbench.cli.main import main
from stbench.methods.gp_searcher import GPEISearcher


def thread_counts() -> dict[str, int]:
    return {f"{pool['user_api']} {pool['filepath']}": pool["num_threads"]
            for pool in threadpool_info()}


def test_gp_suggestions_of_a_local_study_run_on_one_thread(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, int]] = []
    original = GPEISearcher.suggest

    def suggest(self: GPEISearcher, **kwargs: Any) -> Any:
        seen.append(thread_counts())
        return original(self, **kwargs)

    monkeypatch.setattr(GPEISearcher, "suggest", suggest)
    with threadpool_limits(2):  # two threads per pool outside, whatever the machine's cores
        before = thread_counts()
        code = main(["run", "--benchmark", "synthetic_curves", "--method", "BO",
                     "--experiment_tag", "threads", "--results_root", str(tmp_path),
                     "--max_wallclock_time", "2", "--epoch_duration", "0.01"])
        after = thread_counts()
    assert code == 0
    assert seen and all(set(counts.values()) == {1} for counts in seen), seen[:1]
    assert set(before.values()) == {2} and after == before
