"""Flags and AWS session of the commands that read a launched study: status, results, cleanup.

A study launched on SageMaker is found through the region's job listing; one launched with
`stbench launch --local` through its job ledger in S3, at the endpoint the user names.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_study_arguments(parser: argparse.ArgumentParser) -> None:
    """The study's tag and where it was launched: a region, or a `launch --local` S3 root."""
    parser.add_argument("--experiment_tag", "--experiment-tag", required=True)
    parser.add_argument("--region", default=None,
                        help="AWS region of the launched study (default: your AWS config)")
    parser.add_argument("--local", action="store_true",
                        help="a study launched with `stbench launch --local`")
    parser.add_argument("--s3_root", "--s3-root", default=None,
                        help="with --local: the launch's s3://bucket/prefix")
    parser.add_argument("--s3_endpoint", "--s3-endpoint", default=None,
                        help="S3 endpoint URL (default: $AWS_ENDPOINT_URL_S3 or AWS's)")


def study_session(args: argparse.Namespace) -> Any:
    """A boto3 session for the study: with --local, its S3 endpoint set for every client."""
    import boto3  # loaded only by the commands that call AWS

    from stbench.launch.local import local_session

    if args.local:
        return local_session(args.s3_root, args.s3_endpoint, args.region)
    return boto3.session.Session(region_name=args.region)
