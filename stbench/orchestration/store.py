"""Result store: one folder per experiment, written atomically so a crash never leaves half a file.

Layout: `<root>/<experiment_tag>/<benchmark>/<method>/<seed>/` with `metadata.json` and
`results.jsonl` (one row per metric report). Rows are kept in memory and the file is
rewritten (temp file + rename) at most once per `flush_interval`, and at the end.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import syne_tune

import stbench
from stbench.model.errors import UserError

METADATA = "metadata.json"
RESULTS = "results.jsonl"
INTERRUPTED = "Interrupted"


def experiment_dir(root: Path, tag: str, benchmark: str, method: str, seed: int) -> Path:
    return Path(root) / tag / benchmark / method / str(seed)


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
        running = (INTERRUPTED, "InProgress", "Stopping")
        last = {r["trial_id"]: r["status"] for r in self.rows}
        return sum(1 for status in last.values() if status not in running)


class ResultStore:
    """Rows and metadata of one experiment; `flush` makes them durable."""

    def __init__(self, folder: Path, metadata: dict[str, Any], flush_interval: float = 1.0):
        self.folder = Path(folder)
        self.metadata = dict(metadata)
        self.rows: list[dict[str, Any]] = []
        self._rows_by_trial: dict[int, list[dict[str, Any]]] = {}
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
        metadata = _read_json_lines(folder / METADATA, whole=True)[0]
        rows = []
        results = folder / RESULTS
        if results.is_file():
            rows = _read_json_lines(results)
        return PreviousRun(rows, float(metadata.get("elapsed_seconds", 0.0)), metadata)

    def add_row(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self._rows_by_trial.setdefault(row["trial_id"], []).append(row)
        self._dirty = True

    def set_trial_status(self, trial_id: int, status: str, **extra: Any) -> None:
        """Every row of a trial carries its latest status (and e.g. its failure reason)."""
        self.annotate_trial(trial_id, status=status, **extra)

    def annotate_trial(self, trial_id: int, **fields: Any) -> None:
        """Fields of every row of a trial, also after it ended (e.g. its cost, once billed)."""
        for row in self._rows_by_trial.get(trial_id, []):
            row.update(fields)
        self._dirty = True

    def update_metadata(self, **fields: Any) -> None:
        self.metadata.update(fields)
        self._metadata_dirty = True

    def flush(self, force: bool = False) -> None:
        """Rows and metadata, at most once per `flush_interval`; results.jsonl is rewritten
        only when rows changed, so keeping metadata's elapsed time current costs little."""
        now = time.monotonic()
        dirty = self._dirty or self._metadata_dirty
        if not force and (not dirty or now - self._last_flush < self.flush_interval):
            return
        if self._dirty or force:
            atomic_write(
                self.folder / RESULTS, "".join(json.dumps(row) + "\n" for row in self.rows)
            )
        atomic_write(self.folder / METADATA, json.dumps(self.metadata, indent=2) + "\n")
        self._dirty = self._metadata_dirty = False
        self._last_flush = now


def _read_json_lines(path: Path, whole: bool = False) -> list[Any]:
    """A results file's JSON (the whole file, or one value per line); a damaged one is a
    UserError naming it, since --resume cannot continue from it."""
    try:
        text = path.read_text(encoding="utf-8")
        return [json.loads(text)] if whole else [json.loads(x) for x in text.splitlines() if x]
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path} is not UTF-8 JSON ({type(err).__name__}), so its experiment "
                        "cannot be resumed: move its folder away, or choose a new "
                        "--experiment_tag") from None
