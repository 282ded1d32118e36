"""Find AWS credentials in what stbench builds or writes (issue 14, R6).

Four kinds of finding: a `.aws/` credentials or config file; an access key id (`AKIA` for
long-term keys, `ASIA` for temporary ones, then 16 capitals or digits) other than AWS's
documented examples (which end in EXAMPLE); an INI-style `aws_secret_access_key = <value>`
line; and any of the exact strings a test passes in (its distinctive test credentials).
"""

from __future__ import annotations

import re
import subprocess
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

KEY_ID = re.compile(rb"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")
# a credentials-file line with a real-looking secret (40 characters of base64), not the
# `aws_secret_access_key=...` keyword arguments of boto3's own code
SECRET_LINE = re.compile(rb"(?im)^\s*aws_secret_access_key\s*=\s*[A-Za-z0-9/+]{30,}\s*$")


def findings(name: str, data: bytes, needles: Iterable[bytes]) -> list[str]:
    """What in one file (`name`, `data`) looks like a credential."""
    found = []
    if re.search(r"(^|/)\.aws/(credentials|config)$", name):
        found.append(f"{name}: an AWS credentials file")
    for match in KEY_ID.finditer(data):
        if not match.group().endswith(b"EXAMPLE"):  # AWS's documented examples, in botocore
            found.append(f"{name}: access key id {match.group().decode()}")
    if SECRET_LINE.search(data):
        found.append(f"{name}: an aws_secret_access_key line")
    found += [f"{name}: the test credential {n.decode()[:6]}..." for n in needles if n in data]
    return found


def _files_of_tar(archive: IO[bytes], prefix: str) -> Iterator[tuple[str, bytes]]:
    """Every regular file of a streamed tar, nested tars (image layers) opened in turn."""
    with tarfile.open(fileobj=archive, mode="r|*") as tar:
        for member in tar:
            if not member.isfile():
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            name = f"{prefix}{member.name}"
            if member.name.endswith(".tar") or member.name.startswith("blobs/"):
                head = handle.read(262)
                if head[257:262] == b"ustar":
                    yield from _files_of_tar(_Prepend(head, handle), f"{name}!")
                    continue
                yield name, head + handle.read()
            else:
                yield name, handle.read()


class _Prepend:
    """A file object whose first bytes were already read (to tell a tar from other blobs)."""

    def __init__(self, head: bytes, rest: IO[bytes]):
        self.head, self.rest = head, rest

    def read(self, size: int = -1) -> bytes:
        if not self.head:
            return self.rest.read(size)
        if size < 0:
            data, self.head = self.head + self.rest.read(), b""
            return data
        data, self.head = self.head[:size], self.head[size:]
        if len(data) < size:
            data += self.rest.read(size - len(data))
        return data


def scan_images(images: list[str], needles: Iterable[bytes]) -> tuple[int, list[str]]:
    """(files read, findings) over every layer and the config of `docker save IMAGES`."""
    needles = list(needles)
    save = subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE)
    assert save.stdout is not None
    count, found = 0, []
    try:
        for name, data in _files_of_tar(save.stdout, ""):
            count += 1
            found += findings(name, data, needles)
    finally:
        save.stdout.close()
        assert save.wait() == 0
    return count, found


def scan_tree(folder: Path, needles: Iterable[bytes]) -> tuple[int, list[str]]:
    """(files read, findings) under a folder (a results root, a copy of a bucket)."""
    needles = list(needles)
    paths = [p for p in sorted(folder.rglob("*")) if p.is_file()]
    found = [f for p in paths for f in findings(str(p.relative_to(folder)), p.read_bytes(),
                                                 needles)]
    return len(paths), found
