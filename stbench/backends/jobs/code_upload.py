"""Storing a packed benchmark folder where its trial jobs' `code` channel reads it.

Content-addressed: `<study root>/code/<sha256>.tar.gz`, written only when absent, so each
unchanged folder is uploaded once per study (every experiment, and the orchestrator jobs of
`stbench launch`, find it there). The study root is `s3://…/<tag>` on SageMaker and the
study's results folder for the Docker back-end.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from stbench.backends.aws import split_s3_uri
from stbench.model.atomic_files import atomic_write
from stbench.model.code_package import CodePackage


def code_uri(study_root: str, package: CodePackage) -> str:
    return f"{study_root.rstrip('/')}/code/{package.file_name}"


def publish_code(package: CodePackage, study_root: str,
                 s3: Callable[[], Any] | None = None) -> str:
    """The package's URI under `study_root` (s3:// or file://), stored there if absent."""
    uri = code_uri(study_root, package)
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        path = Path(parsed.path)
        if not path.is_file():
            atomic_write(path, package.data)
        return uri
    if s3 is None:
        raise ValueError("an S3 client is needed for an s3:// study root")
    client = s3()
    bucket, key = split_s3_uri(uri)
    # a listing, not HeadObject: s3:ListBucket on the prefix is granted already (docs/iam.md)
    listed = client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("Contents", [])
    if not any(item["Key"] == key for item in listed):
        client.put_object(Bucket=bucket, Key=key, Body=package.data)
    return uri
