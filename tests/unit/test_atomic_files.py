"""A rewritten file is the old content or the new, never half: what `stbench results` and
`status` read while an experiment writes its rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stbench.model.atomic_files import atomic_write, atomic_write_lines


def test_a_write_that_fails_midway_leaves_the_old_content_and_no_temporary_file(
        tmp_path: Path) -> None:
    path = tmp_path / "rows" / "results.jsonl"
    assert atomic_write_lines(path, ["a\n", "b\n"]) == 2

    def broken() -> Iterator[str]:
        yield "c\n"
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write_lines(path, broken())
    assert path.read_text() == "a\nb\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["results.jsonl"]


def test_text_and_bytes(tmp_path: Path) -> None:
    atomic_write(tmp_path / "meta.json", "{}\n")
    atomic_write(tmp_path / "code.tar.gz", b"\x1f\x8b")
    assert (tmp_path / "meta.json").read_text() == "{}\n"
    assert (tmp_path / "code.tar.gz").read_bytes() == b"\x1f\x8b"
