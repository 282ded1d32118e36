"""The bad-input table of docs/reliability.md, made by running the test table.

Each case of tests/bad_inputs.py runs as its test runs it (a fresh folder, AWS and
Docker out of reach); the row shows the command and the one line stbench printed, so the
documentation says what the code does. `--write` puts the section into docs/reliability.md.

    .venv/bin/python bench/reliability_table.py [--write]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from bad_inputs import CASES, BadInput, prepare, run_case  # noqa: E402
from docs_section import write_section  # noqa: E402  (this folder)

RELIABILITY_DOC = REPO / "docs" / "reliability.md"
HEADING = "## Bad input"
INTRO = """\
Every kind of bad input below stops with exit code 2 and one `stbench: error:` line that
names the problem and the fix, before anything is written: no results folder, no S3 object,
no job, no image (tests/unit/test_bad_input.py checks each on every CI run, with AWS and
Docker out of reach; tests/integration/test_bad_input_endpoint.py replays the AWS commands
against the local SageMaker endpoint and compares its buckets and job list before and after).
The rows are generated from the test table by `bench/reliability_table.py --write`; `DIR`
is the case's folder.
"""


def shown(arg: str, folder: str) -> str:
    arg = arg.replace(folder, "DIR")
    return f"{arg[:8]}…({len(arg)} chars)" if len(arg) > 40 else shlex.quote(arg)


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def row(case: BadInput) -> str:
    with tempfile.TemporaryDirectory(prefix="stbench-bad-input-") as name:
        folder = Path(name)
        argv = prepare(case, folder)
        outcome = run_case(case, argv, folder)
        lines = outcome.stderr.strip().splitlines()
        printed = lines[-1].replace(name, "DIR") if lines else "(nothing)"
    command = "stbench " + " ".join(shown(arg, name) for arg in argv)
    files = f" (files: {', '.join(case.files)})" if case.files else ""
    locked = f"; unreadable: {', '.join(case.locked)}" if case.locked else ""
    exit_code = "2" if outcome.code == 2 and len(lines) == 1 else f"**{outcome.code}**"
    return (f"| {cell(case.kind)} | `{cell(command)}`{cell(files + locked)} | {exit_code} "
            f"| {cell(printed)} |")


def section() -> str:
    rows = [row(case) for case in CASES]
    return "\n".join([HEADING, "", INTRO, "| kind | command | exit | the line printed |",
                      "|---|---|---|---|", *rows, ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update docs/reliability.md")
    args = parser.parse_args()
    text = section()
    print(text)
    if args.write:
        if not RELIABILITY_DOC.exists():
            RELIABILITY_DOC.write_text("# Reliability\n\n")
        write_section(RELIABILITY_DOC, text)


if __name__ == "__main__":
    main()
