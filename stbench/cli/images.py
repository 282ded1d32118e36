"""`stbench images push`: the role images to ECR (default) or any registry (`make push`).

Progress goes to stderr and the pushed URIs to stdout, one `ROLE URI` line each, so a script
can capture the trainer URI for `stbench run --backend sagemaker --image URI`.
"""

from __future__ import annotations

import argparse
import re
import sys
import time


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


DOCKER_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")  # Docker's reference grammar


def docker_tag(text: str) -> str:
    if not DOCKER_TAG.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"'{text[:40]}{'...' if len(text) > 40 else ''}' is not a Docker tag: use at most "
            "128 letters, digits, '_', '.' and '-', not starting with '.' or '-'")
    return text


def _parser() -> argparse.ArgumentParser:
    from stbench.cli.arguments import OneLineParser
    from stbench.launch.push import ROLES  # boto3 and docker load only for this command

    parser = OneLineParser(prog="stbench images", description="Manage stbench's role images.")
    actions = parser.add_subparsers(dest="action", required=True, parser_class=OneLineParser)
    push = actions.add_parser(
        "push", help="push the role images to ECR or another registry",
        description="Push stbench-ROLE:TAG as REGISTRY/stbench-ROLE:TAG and :latest. Without "
                    "--registry: ECR of the current AWS account and region (repositories are "
                    "created on first use).")
    push.add_argument("--registry", help="HOST[:PORT][/path] of another registry (no AWS calls)")
    push.add_argument("--region", help="AWS region of the ECR registry (default: your AWS config)")
    push.add_argument("--roles", nargs="+", choices=ROLES, default=None,
                      help="which role images to push (default: trainer and orchestrator, "
                           "and trainer-gpu when `make build GPU=1` built it)")
    push.add_argument("--tag", type=docker_tag,
                      help="local image tag to push (default: <version>-<git sha>, as `make "
                           "build` tags it)")
    return parser


def cmd_images(argv: list[str]) -> int:
    """`stbench images push ...`; raises `UserError` for anything the user can fix."""
    from stbench.backends.jobs.docker_engine import connect
    from stbench.launch import push

    args = _parser().parse_args(argv)

    target = push.registry_target(args.registry) if args.registry else None  # typos first
    client = connect()
    try:
        tag = args.tag or push.default_tag()
        roles = list(dict.fromkeys(args.roles or push.default_roles(client, tag)))
        images = push.local_images(client, roles, tag)
        if target is None:
            import boto3

            session = boto3.session.Session(region_name=args.region)
            target = push.ecr_target(session, client, roles, _progress)
        started = time.monotonic()
        pushed = push.push_images(client, target, images, tag, _progress)
    finally:
        client.close()
    _progress(f"pushed {len(pushed)} images (tags {tag} and latest) to {target.registry} "
              f"in {time.monotonic() - started:.0f} s; use the trainer URI as "
              "`stbench run --backend sagemaker --image URI`")
    for each in pushed:
        print(f"{each.role:<13s} {each.uri}")
    return 0
