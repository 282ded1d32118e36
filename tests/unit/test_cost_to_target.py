"""`stbench results`' cost sections on a hand-made results folder: the trial dollars each
method spent until its best so far first reached a target, the target chosen with and
without a known optimum, and the orchestrator jobs' cost column of a launched study.

Benchmark "b" minimizes y; every trial's cost is its only report's, so the spend after
each report is the running sum (worked out beside each experiment below).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stbench.analysis.report import report
from stbench.cli.launched_study import LAUNCHED_RECORD, needs_fetch

TAG = "dollars"
# (time, y, trial cost) per report, one trial each
EXPERIMENTS: dict[tuple[str, int], list[tuple[float, float, float]]] = {
    ("A", 0): [(1, 10.0, 0.1), (2, 4.0, 0.2), (3, 0.4, 0.3)],  # spent 0.1, 0.3, 0.6; final 0.4
    ("A", 1): [(1, 8.0, 0.1), (2, 0.3, 0.4)],  # spent 0.1, 0.5; final 0.3
    ("B", 0): [(1, 10.0, 0.5), (2, 6.0, 0.5)],  # final 6
    ("B", 1): [(1, 9.0, 0.5), (2, 8.0, 0.5)],  # final 8: the worst final best
    ("C", 0): [(1, 9.0, 0.1), (2, 3.0, 0.1)],  # spent 0.1, 0.2; final 3
    ("C", 1): [(1, 5.0, 0.1)],  # final 5
}


def write_study(root: Path, **metadata: Any) -> Path:
    for (method, seed), reports in EXPERIMENTS.items():
        folder = root / TAG / "b" / method / str(seed)
        folder.mkdir(parents=True)
        meta = {"metric": "y", "mode": "min", "status": "completed",
                "spec": {"max_wallclock_time": 10.0}, **metadata}
        extra = meta.pop(f"{method}{seed}", {})
        (folder / "metadata.json").write_text(json.dumps({**meta, **extra}))
        rows = [{"trial_id": i, "status": "Completed", "wallclock_time": t, "config": {},
                 "metrics": {"y": y}, "cost_usd": cost}
                for i, (t, y, cost) in enumerate(reports)]
        (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def section(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("trial dollars until"))
    return lines[start:start + 7]


def test_with_a_known_optimum_the_target_is_normalized_regret_0_05(tmp_path: Path) -> None:
    # regret is measured from the optimum 0 and normalized by the worst final best (8):
    # y <= 0.05 x 8 = 0.4. A reaches it at $0.60 (seed 0, y = 0.4) and $0.50 (seed 1);
    # B and C never do
    text, _ = report(write_study(tmp_path, optimum=0.0), TAG)
    assert section(text) == [
        "trial dollars until the best so far first reached a target (median over seeds; a "
        "seed that never reached it counts as never)",
        "  b: target y <= 0.4 (normalized regret 0.05: known optimum 0, worst final best 8)",
        "  method  $ to target  seeds reached",
        "  ------  -----------  -------------",
        "  A              0.55            2/2",
        "  B       not reached            0/2",
        "  C       not reached            0/2",
    ]


def test_without_an_optimum_the_target_is_the_median_of_the_methods_finals(
        tmp_path: Path) -> None:
    # finals, mean over seeds: A 0.35, B 7, C 4 -> target y <= 4. A: seed 0 reaches 4 at
    # $0.30, seed 1 0.3 at $0.50 -> median 0.4. C: seed 0 at $0.20, seed 1 never: the median
    # of $0.20 and never is never, though one seed reached it
    text, plots = report(write_study(tmp_path), TAG)
    assert section(text)[1:] == [
        "  b: target y <= 4 (median of the 3 methods' final best (mean over seeds); no known "
        "optimum)",
        "  method  $ to target  seeds reached",
        "  ------  -----------  -------------",
        "  A               0.4            2/2",
        "  B       not reached            0/2",
        "  C       not reached            1/2",
    ]
    assert [p.name for p in plots] == ["b.png", "rank_over_time.png", "b_cost.png"]


def test_estimated_costs_say_so_in_both_tables(tmp_path: Path) -> None:
    text, _ = report(write_study(tmp_path, optimum=0.0, cost_estimated=True), TAG)
    assert section(text)[2].split("  ")[:3] == ["", "method", "$ to target (estimated)"]
    header = text.splitlines()[2]
    assert "trials $ (estimated)" in header and "orchestrator $" not in header  # local study


def test_results_show_the_orchestrator_jobs_cost_per_method(tmp_path: Path) -> None:
    # a launched study's copy: A billed $0.01 and $0.03; B's seed 1 still runs ($0.02 so
    # far); C's instance type has no price
    text, _ = report(write_study(
        tmp_path, orchestrator_running=False, orchestrator_cost_usd=0.01,
        A1={"orchestrator_cost_usd": 0.03}, B1={"orchestrator_running": True},
        C0={"orchestrator_cost_usd": None}), TAG)
    # trial costs, mean over seeds: A (0.6 + 0.5) / 2, B 1, C (0.2 + 0.1) / 2
    assert text.splitlines()[2:8] == [
        "benchmark  metric   method  seeds  best mean ± se   IQM  trials  trials $  "
        "orchestrator $  rank",
        "---------  -------  ------  -----  --------------  ----  ------  --------  "
        "--------------  ----",
        "b          y (min)  A           2     0.35 ± 0.05  0.35     2.5      0.55  "
        "          0.02     1",
        "b          y (min)  C           2           4 ± 1     4     1.5      0.15  "
        "             ?     2",
        "b          y (min)  B           2           7 ± 1     7       2      1.00  "
        "   0.01 so far     3",
        "?: an orchestrator job's instance type has no price in the price table "
        "(STBENCH_PRICES)",
    ]


def test_a_copy_is_fetched_again_while_an_orchestrator_job_still_runs(tmp_path: Path) -> None:
    write_study(tmp_path, orchestrator_running=False, orchestrator_cost_usd=0.01)
    (tmp_path / TAG / LAUNCHED_RECORD).write_text(json.dumps(
        {"experiments": 6, "with_results": 6}))
    assert not needs_fetch(tmp_path / TAG)
    meta = tmp_path / TAG / "b" / "A" / "0" / "metadata.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "orchestrator_running": True}))
    assert needs_fetch(tmp_path / TAG)


def test_a_mix_of_estimated_and_billed_costs_marks_the_estimated_ones(tmp_path: Path) -> None:
    # A's trials ran locally (priced at the SageMaker type), B's and C's were billed
    text, _ = report(write_study(tmp_path, optimum=0.0, A0={"cost_estimated": True},
                                 A1={"cost_estimated": True}), TAG)
    lines = text.splitlines()
    assert lines[2].split()[-3:] == ["trials", "$", "rank"]
    assert lines[4].split()[3] == "A" and lines[4].split()[-2] == "0.55*"
    assert lines[7] == "* estimated: local or simulated seconds at the benchmark's SageMaker price"
    assert lines[5].endswith(" 0.15      2")  # billed: aligned with the marked cell's digits
    assert section(text)[2:5] == ["  method       $ to target  seeds reached",
                                  "  ------  ----------------  -------------",
                                  "  A       0.55 (estimated)            2/2"]
