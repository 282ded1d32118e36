"""`stbench results` draws its PNGs in two processes on Linux: every PNG must still be written,
and listed in the order the report names them, even when the helper process fails."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

from stbench.analysis.report import draw_in_two_processes


def _write(path: Path, parent_pid: int, fail_in_child: bool = False) -> Path:
    if fail_in_child and os.getpid() != parent_pid:
        raise RuntimeError("the helper process cannot draw")
    path.write_text(str(os.getpid()))
    return path


def _jobs(tmp_path: Path, fail_in_child: bool = False) -> list:
    paths = [tmp_path / f"plot{index}.png" for index in range(5)]
    return [(path, partial(_write, path, os.getpid(), fail_in_child)) for path in paths]


def test_every_png_is_written_and_listed_in_order(tmp_path: Path) -> None:
    jobs = _jobs(tmp_path)
    assert list(draw_in_two_processes(jobs)) == [path for path, _ in jobs]
    assert all(path.exists() for path, _ in jobs)


def test_a_failing_helper_process_leaves_its_pngs_to_the_parent(tmp_path: Path) -> None:
    jobs = _jobs(tmp_path, fail_in_child=True)
    assert list(draw_in_two_processes(jobs)) == [path for path, _ in jobs]
    assert {path.read_text() for path, _ in jobs} == {str(os.getpid())}
