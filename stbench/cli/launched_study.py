"""Flags and AWS session of the commands that read a launched study: status, results, cleanup.

A launched study is found through the region's job listing, on SageMaker or on the local
SageMaker endpoint (`stbench emulator`, reached through AWS_ENDPOINT_URL as boto3 does).
`stbench results` copies its results from S3 into the results folder, and copies them
again while that copy is unfinished.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from stbench.model.errors import UserError

# beside a launched study's copy: how many experiments were launched, how many had results
LAUNCHED_RECORD = "launched.json"
FINAL_STATUSES = ("completed", "failed", "interrupted")  # an experiment's metadata status


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


def needs_fetch(tag_dir: Path) -> bool:
    """Whether `stbench results` fetches a launched study from S3: when there is no copy
    yet, or the copy is unfinished (an experiment had nothing uploaded, or its metadata says
    it is still running, or its orchestrator job still ran). A local study's folder has no
    LAUNCHED_RECORD: never fetched."""
    if not tag_dir.is_dir():
        return True
    record = tag_dir / LAUNCHED_RECORD
    if not record.is_file():
        return False
    from stbench.launch.status import ORCHESTRATOR_RUNNING

    try:
        fetched = json.loads(record.read_text())
        if fetched["with_results"] < fetched["experiments"]:
            return True
        metadata = [json.loads(path.read_text()) for path in tag_dir.glob("*/*/*/metadata.json")]
        # an orchestrator job may still run (uploading) after its experiment ended: its
        # cost so far is not its bill
        return any(m.get("status") not in FINAL_STATUSES or m.get(ORCHESTRATOR_RUNNING)
                   for m in metadata)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return True  # a damaged copy: fetch it again


def fetch_launched(root: Path, args: argparse.Namespace) -> None:
    """Copy a launched study's results from S3 when AWS is configured (without it, a copy
    fetched before is shown, else the report says there are no results)."""
    from stbench.backends.aws import check_credentials
    from stbench.launch.status import fetch_results, job_directory
    from stbench.model.atomic_files import atomic_write

    tag = args.experiment_tag
    session = study_session(args)
    try:
        check_credentials(session)
    except UserError as err:
        if (root / tag).is_dir():
            print(f"stbench: showing the copy in {root / tag}, not refreshed from S3: {err}",
                  file=sys.stderr)
        return
    copied, launched = fetch_results(session, job_directory(session, tag), tag, root)
    if launched:
        atomic_write(root / tag / LAUNCHED_RECORD,
                     json.dumps({"experiments": launched, "with_results": copied}) + "\n")
    if copied:
        print(f"fetched {copied} experiments of '{tag}' from S3 into {root}", file=sys.stderr)
