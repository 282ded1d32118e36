"""A job's checkpoint store: restored into `/opt/ml/checkpoints` before it starts and uploaded
while it runs and when it ends, as SageMaker does with `CheckpointConfig.S3Uri`.

Locally the URI is either file:// (a folder, for `--backend docker`) or s3:// (any S3
endpoint, e.g. moto, for the `launch --local` rehearsal: set AWS_ENDPOINT_URL_S3). Uploads
are incremental: only files whose size or modification time changed since the last one.
Dot-files are skipped, because writers rename finished temp files into place.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from stbench.model.errors import UserError

Fingerprints = dict[str, tuple[int, int]]


class CheckpointStore(Protocol):
    def restore(self, into: Path) -> None: ...

    def upload(self, source: Path) -> None: ...


class FolderStore:
    """file:// : the whole folder is replaced at each upload (cheap, local)."""

    def __init__(self, path: Path):
        self.path = path

    def restore(self, into: Path) -> None:
        if self.path.is_dir():
            shutil.copytree(self.path, into, dirs_exist_ok=True)

    def upload(self, source: Path) -> None:
        if not source.is_dir() or not any(source.iterdir()):
            return
        tmp = self.path.with_name(self.path.name + ".uploading")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(source, tmp)
        shutil.rmtree(self.path, ignore_errors=True)
        tmp.rename(self.path)


class S3Store:
    """s3:// : objects under a prefix, uploaded file by file when they change."""

    def __init__(self, bucket: str, prefix: str, client: Any = None):
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self._client = client
        self._uploaded: Fingerprints = {}
        self._lock = threading.Lock()  # the periodic and the final upload may overlap

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            from stbench.backends.aws import retrying

            self._client = boto3.client("s3", config=retrying())
        return self._client

    def _key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def restore(self, into: Path) -> None:
        paginator = self.client.get_paginator("list_objects_v2")
        start = f"{self.prefix}/" if self.prefix else ""
        for page in paginator.paginate(Bucket=self.bucket, Prefix=start):
            for item in page.get("Contents", []):
                relative = item["Key"][len(start):]
                if not relative or relative.endswith("/"):
                    continue
                target = into / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                self.client.download_file(self.bucket, item["Key"], str(target))
                stat = target.stat()
                self._uploaded[relative] = (stat.st_size, stat.st_mtime_ns)

    def upload(self, source: Path) -> None:
        with self._lock:
            for path, relative, fingerprint in _changed_files(source, self._uploaded):
                try:
                    self.client.upload_file(str(path), self.bucket, self._key(relative))
                except FileNotFoundError:  # replaced or removed while we looked
                    continue
                self._uploaded[relative] = fingerprint


def store_for(uri: str, client: Any = None) -> CheckpointStore:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return FolderStore(Path(parsed.path))
    if parsed.scheme == "s3" and parsed.netloc:
        return S3Store(parsed.netloc, parsed.path, client)
    raise UserError(f"checkpoint URI {uri} is neither file:// nor s3://bucket/prefix")


def _changed_files(source: Path, seen: Fingerprints) -> list[tuple[Path, str, tuple[int, int]]]:
    changed = []
    if not source.is_dir():
        return changed
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source).as_posix()
        if any(part.startswith(".") for part in Path(relative).parts):
            continue
        try:
            if not path.is_file():
                continue
            stat = path.stat()
        except FileNotFoundError:
            continue
        fingerprint = (stat.st_size, stat.st_mtime_ns)
        if seen.get(relative) != fingerprint:
            changed.append((path, relative, fingerprint))
    return changed
