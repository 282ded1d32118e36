"""ASHA at scale (issue 14, P6): stbench's ASHA family decides exactly as Syne Tune's
`Bracket` does, without building and sorting an array of every value at the rung for each
report (Syne Tune 0.16: 0.5 s per report with 100k trials at a rung)."""

from __future__ import annotations

import tracemalloc

import numpy as np
from syne_tune.optimizer.schedulers.asha import Bracket

from stbench.methods.asha_rungs import SortedRungBracket
from stbench.methods.registry import MethodContext, get_method
from stbench.model.catalog import load_benchmark


def test_decisions_equal_syne_tunes_on_random_reports_with_ties() -> None:
    rng = np.random.default_rng(np.random.SeedSequence(14).spawn(1)[0])
    theirs, ours = Bracket(1, 27, 3, 0), SortedRungBracket(1, 27, 3, 0)
    decisions = []
    for _ in range(3000):
        trial_id = int(rng.integers(0, 800))
        cur_iter = int(rng.choice([1, 2, 3, 5, 9, 12, 27]))
        metrics = {"loss": round(float(rng.random()), 1)}  # ties are common
        expected = theirs.on_result(trial_id, cur_iter, dict(metrics))
        assert ours.on_result(trial_id, cur_iter, dict(metrics)) == expected
        decisions.append(expected)
    assert ours.rungs == theirs.rungs
    assert {"CONTINUE", "STOP"} <= {str(d).upper() for d in decisions}
    nan = {"loss": float("nan")}  # no order: Syne Tune's own path, from then on
    assert ours.on_result(900, 1, dict(nan)) == theirs.on_result(900, 1, dict(nan))
    assert ours.on_result(901, 1, {"loss": 0.3}) == theirs.on_result(901, 1, {"loss": 0.3})


def test_a_report_at_a_rung_of_20k_trials_allocates_no_array_of_them() -> None:
    bench = load_benchmark("synthetic_curves")
    scheduler = get_method("ASHA").make_scheduler(MethodContext.for_benchmark(bench, 1))
    trials = 20_000
    for trial_id in range(trials + 1):
        trial = _trial(trial_id)
        scheduler.on_trial_add(trial)
        if trial_id < trials:
            scheduler.on_trial_result(trial, {"epoch": 1, bench.metric: trial_id / trials})
    tracemalloc.start()
    try:
        scheduler.on_trial_result(_trial(trials), {"epoch": 1, bench.metric: 0.5})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100_000, f"{peak} bytes for one report (Syne Tune's: an array of all 20k)"


def _trial(trial_id: int):  # noqa: ANN202
    from datetime import datetime

    from syne_tune.backend.trial_status import Trial

    return Trial(trial_id, {"x": 0.5, "log_lr": -2.0, "width": 8, "epochs": 9}, datetime.now())
