"""`stbench cleanup`: stop a study's jobs and release its warm pools (stbench/launch/cleanup.py)."""

from __future__ import annotations

import sys

from stbench.backends.aws import check_credentials
from stbench.cli.launched import add_study_arguments, study_session
from stbench.cli.main import OneLineParser
from stbench.launch.cleanup import cleanup_sagemaker
from stbench.model.errors import UserError


def cmd_cleanup(argv: list[str]) -> int:
    """Asks first (or --yes), as it stops jobs that may still be wanted."""
    parser = OneLineParser(prog="stbench cleanup", description="Stop a study's SageMaker jobs.")
    add_study_arguments(parser)
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    args = parser.parse_args(argv)
    if not args.yes and not sys.stdin.isatty():
        raise UserError("stbench cleanup asks before it stops jobs, but stdin is not a "
                        "terminal: pass --yes")
    session = study_session(args)
    check_credentials(session)
    return cleanup_sagemaker(session, args.experiment_tag, None if args.yes else _confirmed)


def _confirmed() -> bool:
    print("proceed? [y/N] ", end="", flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")
