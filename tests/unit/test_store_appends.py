"""Result store at scale (issue 14, P6): a flush during the run writes what changed since the
previous one, not every row the experiment holds, and readers still see each trial's latest
status, also in a folder left by a kill."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from stbench.analysis.frame import load_results
from stbench.orchestration.store import RESULTS, UPDATES, ResultStore, read_rows

FINISHED = 1000


def row(trial_id: int, epoch: int) -> dict:
    return {"trial_id": trial_id, "status": "InProgress", "wallclock_time": float(trial_id),
            "worker_time": None, "config": {"x": 0.5}, "metrics": {"epoch": epoch, "loss": 1.0}}


def store_with_finished_trials(folder: Path) -> ResultStore:
    store = ResultStore(folder, {"status": "running", "metric": "loss", "mode": "min",
                                 "experiment_tag": "t", "benchmark": "b", "method": "RS",
                                 "seed": 0}, flush_interval=0.0)
    store.flush(force=True)
    for trial_id in range(FINISHED):
        store.add_row(row(trial_id, 1))
        store.set_trial_status(trial_id, "Completed", billable_seconds=None)
    store.flush(force=True)
    return store


def test_a_flush_appends_the_new_rows_and_status_changes_only(tmp_path: Path) -> None:
    store = store_with_finished_trials(tmp_path)
    results = tmp_path / RESULTS
    before = results.read_bytes()
    inode = results.stat().st_ino

    store.add_row(row(FINISHED, 1))  # a running trial reports
    store.annotate_trial(3, billable_seconds=42)  # a finished one is billed
    store.flush(force=False)

    after = results.read_bytes()
    assert results.stat().st_ino == inode, "results.jsonl is appended to, not replaced"
    assert after.startswith(before) and after.count(b"\n") == FINISHED + 1
    assert len((tmp_path / UPDATES).read_text().splitlines()) == 1
    rows = read_rows(tmp_path)
    assert rows[3]["billable_seconds"] == 42 and rows[3]["status"] == "Completed"
    assert rows[-1]["status"] == "InProgress"

    store.set_trial_status(FINISHED, "Stopped")
    store.flush(force=True)  # the experiment's end: one file, every update in its rows
    # emptied, not removed: a checkpoint sync never deletes, so a stale copy would stay
    assert (tmp_path / UPDATES).read_text() == ""
    assert read_rows(tmp_path) == store.rows
    assert read_rows(tmp_path)[-1]["status"] == "Stopped"


def test_a_running_experiment_reads_with_its_statuses(tmp_path: Path) -> None:
    store = store_with_finished_trials(tmp_path / "exp" / "b" / "RS" / "0")
    store.add_row(row(FINISHED, 1))
    store.set_trial_status(0, "Failed", failure_reason="exit code 1")
    store.flush(force=False)

    frame = load_results(tmp_path, "exp")
    assert frame.loc[frame.trial_id == 0, "status"].tolist() == ["Failed"]
    assert (frame.status == "InProgress").sum() == 1


def test_a_kill_mid_append_loses_only_the_cut_line(tmp_path: Path) -> None:
    store = store_with_finished_trials(tmp_path)
    store.add_row(row(FINISHED, 1))
    store.flush(force=False)
    with (tmp_path / RESULTS).open("a") as handle:
        handle.write('{"trial_id": 1001, "sta')  # what a kill -9 mid-write leaves
    previous = ResultStore.load_previous(tmp_path)
    assert len(previous.rows) == FINISHED + 1
    assert previous.next_trial_id == FINISHED + 1


def test_the_final_rewrite_streams_rows_instead_of_loading_them(tmp_path: Path) -> None:
    store = store_with_finished_trials(tmp_path)
    for trial_id in range(FINISHED, 20 * FINISHED):
        store.add_row(row(trial_id, 1))
    store.flush(force=False)
    for trial_id in range(20 * FINISHED):
        store.annotate_trial(trial_id, billable_seconds=trial_id)
    store.flush(force=False)
    on_disk = (tmp_path / RESULTS).stat().st_size
    tracemalloc.start()
    try:
        store.flush(force=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # every trial has an update here; loading the rows took 12x the file (their dicts)
    assert peak < 3 * on_disk, "memory of the rewrite: the updates, not the rows"
    assert read_rows(tmp_path)[-1]["billable_seconds"] == 20 * FINISHED - 1
