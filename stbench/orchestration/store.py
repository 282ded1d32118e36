"""Result store: one folder per experiment, written atomically so a crash never leaves half a file.

Layout: `<root>/<experiment_tag>/<benchmark>/<method>/<seed>/` with `metadata.json` and
`results.jsonl` (one row per metric report). While the experiment runs, a flush (at most once
per `flush_interval`) costs what changed since the previous one, never what the experiment
already holds: new rows are appended to results.jsonl, and changes to rows already written (a
trial's status, its cost once billed) are appended to `trial_updates.jsonl`. The experiment's
start and end (`flush(force=True)`) rewrite results.jsonl whole (temp file + rename) with
every update applied and empty trial_updates.jsonl; `read_rows` merges the two meanwhile.
Emptied, not removed: a launched experiment's folder is a job's checkpoint folder, and
checkpoint syncs (SageMaker's, the local endpoint's) upload new and changed files but never
delete one, so a removed updates file would stay in S3 and its old fields be applied again
over the final rows (a released warm pool read as `Available`, reuse and retained time lost).
"""

from __future__ import annotations

import itertools
import json
import platform
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import syne_tune
from syne_tune.backend.trial_status import Status

import stbench
from stbench.model.atomic_files import atomic_write, atomic_write_lines
from stbench.model.errors import UserError

METADATA = "metadata.json"
RESULTS = "results.jsonl"
# {"rows": n, "trial_id": t, **fields}: fields of trial t's rows among the first n rows
UPDATES = "trial_updates.jsonl"
INTERRUPTED = "Interrupted"


def experiment_dir(root: Path, tag: str, benchmark: str, method: str, seed: int) -> Path:
    return Path(root) / tag / benchmark / method / str(seed)


def versions() -> dict[str, str]:
    return {
        "stbench": stbench.__version__,
        "syne_tune": syne_tune.__version__,
        "python": platform.python_version(),
    }


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class PreviousRun:
    """What an interrupted experiment left behind, for `--resume`."""

    rows: list[dict[str, Any]]
    elapsed_seconds: float
    metadata: dict[str, Any]

    @property
    def next_trial_id(self) -> int:
        return max((r["trial_id"] for r in self.rows), default=-1) + 1

    @property
    def trials_that_count(self) -> int:
        """Earlier trials that count against --max_num_trials: all but those cut short by
        the interruption, whose work is lost (the resumed run replaces them)."""
        running = (INTERRUPTED, Status.in_progress, Status.stopping)
        last = {r["trial_id"]: r["status"] for r in self.rows}
        return sum(1 for status in last.values() if status not in running)


class ResultStore:
    """Rows and metadata of one experiment; `flush` makes them durable."""

    def __init__(self, folder: Path, metadata: dict[str, Any], flush_interval: float = 1.0):
        self.folder = Path(folder)
        self.metadata = dict(metadata)
        self._pending: list[dict[str, Any]] = []  # rows not yet in results.jsonl
        self._pending_by_trial: dict[int, list[dict[str, Any]]] = {}
        self._updates: list[dict[str, Any]] = []  # updates not yet in trial_updates.jsonl
        self._trials_with_rows: set[int] = set()
        self._rows_added = 0
        self._rows_in_file: int | None = None  # None: results.jsonl not yet written by us
        self.flush_interval = flush_interval
        self._dirty = False  # rows changed
        self._metadata_dirty = False  # only metadata changed: a small file to rewrite
        self._last_flush = 0.0

    @staticmethod
    def exists(folder: Path) -> bool:
        return (Path(folder) / METADATA).is_file()

    @staticmethod
    def load_previous(folder: Path) -> PreviousRun:
        folder = Path(folder)
        metadata = _read_json(folder / METADATA)
        return PreviousRun(read_rows(folder), float(metadata.get("elapsed_seconds", 0.0)),
                           metadata)

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Every row with its latest fields: the files (once this store wrote them) and what
        is not flushed yet. Reads the files: for tests and the end, not for every poll."""
        return list(self._merged_rows())

    def _merged_rows(self) -> Iterator[dict[str, Any]]:
        if self._rows_in_file is None:
            return iter(self._pending)
        updates = _updates_by_trial(
            itertools.chain(_iter_json_lines(self.folder / UPDATES), self._updates))
        rows = itertools.chain(_iter_json_lines(self.folder / RESULTS), self._pending)
        return _apply_updates(rows, updates)

    def add_row(self, row: dict[str, Any]) -> None:
        self._pending.append(row)
        self._pending_by_trial.setdefault(row["trial_id"], []).append(row)
        self._trials_with_rows.add(row["trial_id"])
        self._rows_added += 1
        self._dirty = True

    def set_trial_status(self, trial_id: int, status: str, **extra: Any) -> None:
        """Every row of a trial carries its latest status (and e.g. its failure reason)."""
        self.annotate_trial(trial_id, status=status, **extra)

    def annotate_trial(self, trial_id: int, **fields: Any) -> None:
        """Fields of every row of a trial, also after it ended (e.g. its cost, once billed)."""
        if trial_id not in self._trials_with_rows:
            return
        for row in self._pending_by_trial.get(trial_id, []):
            row.update(fields)
        self._updates.append({"rows": self._rows_added, "trial_id": trial_id, **fields})
        self._dirty = True

    def update_metadata(self, **fields: Any) -> None:
        self.metadata.update(fields)
        self._metadata_dirty = True

    def flush(self, force: bool = False) -> None:
        """Rows and metadata, at most once per `flush_interval`: new rows and updates are
        appended, so keeping metadata's elapsed time current costs little; `force` (the
        experiment's start and end) rewrites results.jsonl whole."""
        now = time.monotonic()
        dirty = self._dirty or self._metadata_dirty
        if not force and (not dirty or now - self._last_flush < self.flush_interval):
            return
        if force or self._rows_in_file is None:
            self._rewrite_results()
        elif self._dirty:
            _append_lines(self.folder / RESULTS, self._pending)
            _append_lines(self.folder / UPDATES, self._updates)
            self._rows_in_file += len(self._pending)
        self._pending, self._pending_by_trial, self._updates = [], {}, []
        atomic_write(self.folder / METADATA, json.dumps(self.metadata, indent=2) + "\n")
        self._dirty = self._metadata_dirty = False
        self._last_flush = now

    def _rewrite_results(self) -> None:
        """results.jsonl whole, every update applied, written row by row (at 100k trials the
        rows would not fit beside the loop); then the updates file is obsolete and emptied
        (were it left by a kill, applying it again would change nothing; a stale copy
        uploaded before would, so it is never just removed: see the module's docstring)."""
        self._rows_in_file = atomic_write_lines(
            self.folder / RESULTS, (json.dumps(row) + "\n" for row in self._merged_rows()))
        updates = self.folder / UPDATES
        if updates.exists():
            atomic_write(updates, "")


def read_rows(folder: Path) -> list[dict[str, Any]]:
    """An experiment's rows with every trial update applied, also while it runs."""
    folder = Path(folder)
    return merge_updates(_iter_json_lines(folder / RESULTS), _iter_json_lines(folder / UPDATES))


def merge_updates(rows: Iterable[dict[str, Any]],
                  updates: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with the records of `UPDATES` applied (each to its trial's rows that existed
    when it was made)."""
    return list(_apply_updates(rows, _updates_by_trial(updates)))


def _updates_by_trial(updates: Iterable[dict[str, Any]]) -> dict[Any, list[str]]:
    """Update records by trial, each kept as its JSON text: a third of the memory of the
    parsed record, which counts at the end of a study with 100k trials."""
    by_trial: dict[Any, list[str]] = {}
    for update in updates:
        by_trial.setdefault(update.get("trial_id"), []).append(json.dumps(update))
    return by_trial


def _apply_updates(rows: Iterable[dict[str, Any]],
                   updates: dict[Any, list[str]]) -> Iterator[dict[str, Any]]:
    for index, row in enumerate(rows):
        for text in updates.get(row.get("trial_id"), ()):
            update = json.loads(text)
            if index < update.pop("rows", 0):
                update.pop("trial_id", None)
                row.update(update)
        yield row


def json_lines(text: str) -> list[Any]:
    """One JSON value per line; a damaged line raises, except a last one a kill cut short."""
    lines = text.split("\n")
    return [json.loads(x) for x in lines[:-1] if x] + _unless_cut_short(lines[-1])


def _unless_cut_short(last: str) -> list[Any]:
    """A last line without its newline: complete JSON, or a write a kill cut short (skipped:
    appends go one write at a time, so nothing before it is damaged)."""
    try:
        return [json.loads(last)] if last.strip() else []
    except json.JSONDecodeError:
        return []


def _iter_json_lines(path: Path) -> Iterator[Any]:
    """A JSON-lines file one line at a time (see `json_lines`); nothing when it does not
    exist; a damaged line is a UserError naming the file."""
    if not path.is_file():
        return
    try:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.endswith("\n"):
                    if line.strip():
                        yield json.loads(line)
                else:
                    yield from _unless_cut_short(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _damaged(path, err) from None


def _append_lines(path: Path, values: list[dict[str, Any]]) -> None:
    """One write: a kill leaves at most an unterminated last line, which readers skip."""
    if values:
        with path.open("a", encoding="utf-8") as handle:
            handle.write("".join(json.dumps(value) + "\n" for value in values))


def _read_json(path: Path) -> Any:
    """A results folder's JSON file; a damaged one is a UserError naming it, since --resume
    cannot continue from it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _damaged(path, err) from None


def _damaged(path: Path, err: Exception) -> UserError:
    return UserError(f"{path} is not UTF-8 JSON ({type(err).__name__}), so its experiment "
                     "cannot be resumed: move its folder away, or choose a new "
                     "--experiment_tag")
