"""Writing a file so that a reader sees the old content or the new, never half of it: a
temporary file beside it, renamed over it (a rename within a folder is atomic on POSIX).

Every file stbench rewrites while another process may read it (an experiment's results and
metadata, read by `stbench results` and `status`; a trial's log; a stored code package) goes
through here. Only the standard library: every layer may use it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any


def atomic_write(path: Path, data: str | bytes) -> None:
    """`path` holds `data` (text as UTF-8), or still what it held if this fails."""
    if isinstance(data, bytes):
        _replace(path, lambda handle: handle.write(data), binary=True)
    else:
        atomic_write_lines(path, (data,))


def atomic_write_lines(path: Path, lines: Iterable[str]) -> int:
    """`atomic_write` of many lines, without joining them first; returns how many."""
    written: list[int] = [0]

    def write(handle: IO[Any]) -> None:
        for line in lines:
            handle.write(line)
            written[0] += 1

    _replace(path, write, binary=False)
    return written[0]


def _replace(path: Path, write: Callable[[IO[Any]], object], binary: bool) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
