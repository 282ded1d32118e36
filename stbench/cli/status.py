"""`stbench status`: one row per experiment of a launched study (stbench/launch/status.py)."""

from __future__ import annotations

import sys

from stbench.backends.aws import check_credentials
from stbench.cli.arguments import OneLineParser
from stbench.cli.launched_study import add_study_arguments, study_session
from stbench.launch.status import collect, format_status, job_directory


def cmd_status(argv: list[str]) -> int:
    parser = OneLineParser(prog="stbench status", description="Status of a launched study.")
    add_study_arguments(parser)
    args = parser.parse_args(argv)
    session = study_session(args)
    check_credentials(session)
    tag = args.experiment_tag
    rows = collect(session, job_directory(session, tag), tag)
    if not rows:
        print(f"no launched experiments with tag '{tag}'", file=sys.stderr)
        return 0
    print(format_status(rows))
    return 0
