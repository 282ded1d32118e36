"""A job's input channels, laid out as SageMaker does in File mode, before its container starts.

Each `InputDataConfig` channel's objects are copied into `/opt/ml/input/data/<channel>/` and
the channels are described in `/opt/ml/input/config/inputdataconfig.json` (AWS's format:
TrainingInputMode, S3DistributionType, RecordWrapperType, ContentType when given). Shared by
the local Docker adapter (which also takes file:// URIs: a local file or folder) and the
local SageMaker endpoint (s3:// only, from its own S3).

An S3Prefix URI names every object whose key starts with it; an object lands under the
channel folder at its key minus the URI's part up to its last '/': `s3://b/x/data.tar.gz`
gives `data.tar.gz`, `s3://b/train/` gives the files under `train/` (AWS does not document
the layout; this is the reading that keeps one object and one folder both natural).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from stbench.backends.aws import split_s3_uri

INPUT_DATA_CONFIG = "inputdataconfig.json"


class ChannelError(Exception):
    """A channel's data cannot be provided; the message is the job's FailureReason."""


def channel_folder(root: Path, channel: str) -> Path:
    return root / "input" / "data" / channel


def prepare_channels(folder: Path, request: dict[str, Any], s3: Callable[[], Any]) -> None:
    """Copy every channel into `folder` (the job's /opt/ml) and describe them; `s3` gives an
    S3 client, asked for only when a channel is on S3."""
    described: dict[str, dict[str, str]] = {}
    default_mode = (request.get("AlgorithmSpecification") or {}).get("TrainingInputMode", "File")
    for channel in request.get("InputDataConfig") or []:
        name = channel["ChannelName"]
        source = (channel.get("DataSource") or {}).get("S3DataSource")
        mode = channel.get("InputMode") or default_mode
        if source is None or mode != "File" or source.get("S3DataType", "S3Prefix") != "S3Prefix":
            raise ChannelError(f"channel {name}: only S3Prefix data in File mode is supported "
                               "here")
        target = channel_folder(folder, name)
        target.mkdir(parents=True, exist_ok=True)
        _copy(source["S3Uri"], target, s3)
        described[name] = {
            "TrainingInputMode": "File",
            "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
            "RecordWrapperType": channel.get("RecordWrapperType", "None"),
            **({"ContentType": channel["ContentType"]} if channel.get("ContentType") else {}),
        }
    config = folder / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / INPUT_DATA_CONFIG).write_text(json.dumps(described))


def _copy(uri: str, target: Path, s3: Callable[[], Any]) -> None:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        source = Path(parsed.path)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        elif source.is_file():
            shutil.copy2(source, target / source.name)
        else:
            raise ChannelError(f"ClientError: no file or folder at {uri} for the input channel")
        return
    bucket, prefix = split_s3_uri(uri)
    strip = prefix.rfind("/") + 1
    client = s3()
    found = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            relative = item["Key"][strip:]
            if not relative or relative.endswith("/"):
                continue
            path = target / relative
            if not path.resolve().is_relative_to(target.resolve()):
                raise ChannelError(f"ClientError: object key {item['Key']} leaves the channel")
            path.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, item["Key"], str(path))
            found += 1
    if not found:
        raise ChannelError(f"ClientError: No S3 objects found under S3 URL \"{uri}\" given in "
                           "input data source. Please ensure that the bucket exists in the "
                           "selected region, that objects exist under that S3 prefix")
