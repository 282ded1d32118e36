"""Flags and AWS session of the commands that read a launched study: status, results, cleanup.

A launched study is found through the region's job listing, on SageMaker or on the local
SageMaker endpoint (`stbench emulator`, reached through AWS_ENDPOINT_URL as boto3 does).
"""

from __future__ import annotations

import argparse
from typing import Any


def region_name(text: str) -> str:
    """An AWS region name as botocore accepts it (a malformed one would crash a client)."""
    from botocore.exceptions import InvalidRegionError
    from botocore.utils import validate_region_name

    try:
        validate_region_name(text)
    except InvalidRegionError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not an AWS region name (e.g. us-east-1)") from None
    return text


def add_study_arguments(parser: argparse.ArgumentParser) -> None:
    """The study's tag and the region it was launched in."""
    parser.add_argument("--experiment_tag", "--experiment-tag", required=True)
    parser.add_argument("--region", default=None, type=region_name,
                        help="AWS region of the launched study (default: your AWS config)")


def study_session(args: argparse.Namespace) -> Any:
    """A boto3 session in the study's region."""
    import boto3  # loaded only by the commands that call AWS

    return boto3.session.Session(region_name=args.region)
