"""Bad input (issue 14, R5): every kind in `bad_inputs.CASES` stops with exit code 2 and one
`stbench: error:` line naming the problem and the fix, before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from bad_inputs import CASES, DEAD_AWS, BadInput, prepare, run_case, tree

RELIABILITY_DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"



def test_the_table_covers_every_command_and_thirty_kinds() -> None:
    assert len({case.kind for case in CASES}) >= 30
    assert {case.command for case in CASES} >= {"run", "launch", "status", "results", "cleanup",
                                                 "images push"}


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case.command}: {case.kind}")
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case: BadInput, tmp_path: Path) -> None:
    argv = prepare(case, tmp_path)
    before = tree(tmp_path)
    outcome = run_case(case, argv, tmp_path)
    lines = outcome.stderr.splitlines()
    assert (outcome.code, len(lines)) == (2, 1), outcome.stderr[-3000:]
    assert lines[0].startswith("stbench: error: ")
    assert case.problem in lines[0] and case.fix in lines[0], lines[0]
    assert outcome.stdout == ""
    assert tree(tmp_path) == before
    for credential in (DEAD_AWS["AWS_ACCESS_KEY_ID"], DEAD_AWS["AWS_SECRET_ACCESS_KEY"]):
        assert credential not in outcome.stderr


def test_docs_show_every_case() -> None:
    """docs/reliability.md's table comes from this one (bench/reliability_table.py --write):
    a case added, renamed or reworded here without regenerating it fails."""
    rows = [line for line in RELIABILITY_DOC.read_text().splitlines()
            if line.startswith("| ") and "| 2 |" in line]
    for case in CASES:
        assert any(row.startswith(f"| {case.kind} |") and case.problem.replace("|", "\\|") in row
                   for row in rows), case.kind
