"""`stbench cleanup`: stop a study's jobs and release its warm pools (stbench/launch/cleanup.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from stbench.backends.aws import check_credentials
from stbench.cli.arguments import OneLineParser
from stbench.cli.launched_study import add_study_arguments, study_session
from stbench.launch.cleanup import cleanup_sagemaker
from stbench.model.errors import UserError


def cmd_cleanup(argv: list[str]) -> int:
    """Asks first (or --yes), as it stops jobs that may still be wanted."""
    parser = OneLineParser(prog="stbench cleanup", description="Stop a study's SageMaker jobs.")
    add_study_arguments(parser)
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--docker", action="store_true",
                        help="remove the study's trainer containers and volumes from the local "
                        "Docker engine instead (a --backend docker run killed and not resumed)")
    args = parser.parse_args(argv)
    if not args.yes and not sys.stdin.isatty():
        raise UserError("stbench cleanup asks before it stops jobs, but stdin is not a "
                        "terminal: pass --yes")
    if args.docker:
        return cleanup_docker(args.experiment_tag, None if args.yes else _confirmed)
    session = study_session(args)
    check_credentials(session)
    return cleanup_sagemaker(session, args.experiment_tag, None if args.yes else _confirmed)


def cleanup_docker(tag: str, confirm: Callable[[], bool] | None) -> int:
    """A `--backend docker` orchestrator killed with kill -9 leaves its trainer containers
    (and their cache volumes) behind; `--resume` removes them, this does without resuming."""
    from stbench.backends.jobs.docker_engine import STUDY_LABEL, connect, remove_labelled

    client = connect(None)
    label = {"label": f"{STUDY_LABEL}={tag}"}
    found = (len(client.containers.list(all=True, filters=label)),
             len(client.volumes.list(filters=label)))
    if found == (0, 0):
        print(f"no Docker containers or volumes of experiment tag '{tag}': nothing to do")
        return 0
    print(f"experiment tag '{tag}': {found[0]} containers and {found[1]} volumes on the "
          "local Docker engine (a run of this tag that is still going would be cut off)")
    if confirm is not None and not confirm():
        print("nothing done")
        return 1
    removed, left = remove_labelled(client, f"{STUDY_LABEL}={tag}", rounds=3)
    print(f"{removed} removed" + (f", {left} could not be removed" if left else ""))
    return 1 if left else 0


def _confirmed() -> bool:
    print("proceed? [y/N] ", end="", flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")
