"""A user benchmark's folder as one archive: what travels with its trials to a container.

Built-in benchmarks live in the trainer image; a user's benchmark is its YAML, its script and
everything beside them in that folder. Container back-ends give that folder to every trial
job as the input channel `code` (`/opt/ml/input/data/code/<sha256>.tar.gz`), the trainer
unpacks it and runs the script from it. The archive is byte-for-byte reproducible (sorted
entries, no times or owners, normalised modes) and named by the SHA-256 of its tar stream, so
an unchanged folder is stored once per study however often it is packed, also when the
orchestrator job of `stbench launch` packs its unpacked copy again. Pure: no AWS or Docker.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

from stbench.model.benchmark import BUILTIN_DIR, Benchmark
from stbench.model.errors import UserError

CODE_CHANNEL = "code"
METHODS_CHANNEL = "methods"  # installed method packages a launched orchestrator needs
MAX_CODE_MB = 50  # what a trial downloads and unpacks before it starts; data belongs in inputs
MAX_CODE_BYTES = MAX_CODE_MB * 1024 * 1024
SKIPPED_DIRS = frozenset({"__pycache__", ".git"})
SKIPPED_SUFFIXES = (".pyc",)
REQUIREMENTS = "requirements.txt"


@dataclass(frozen=True)
class CodePackage:
    """A packed benchmark folder."""

    folder: Path
    benchmark_file: str  # the YAML, relative to the folder
    data: bytes  # the .tar.gz
    digest: str  # SHA-256 of the uncompressed tar stream

    @property
    def file_name(self) -> str:
        return f"{self.digest}.tar.gz"


def is_user_benchmark(benchmark: Benchmark) -> bool:
    return benchmark.source.parent.resolve() != BUILTIN_DIR.resolve()


def pack_benchmark(benchmark: Benchmark) -> CodePackage:
    """The benchmark's folder packed; UserError (one line) when it cannot travel."""
    folder = benchmark.source.parent.resolve()
    script = benchmark.script.resolve()
    if not script.is_relative_to(folder):
        raise UserError(f"script {script} of benchmark '{benchmark.name}' is outside its folder "
                        f"{folder}: only that folder travels with the trials; move the script "
                        "into it")
    return pack_folder(folder, benchmark.source.name,
                       f"benchmark folder {folder}", "travel with each trial: give the YAML and "
                       "script a folder of their own and pass data as inputs (see README)")


def pack_folder(folder: Path, benchmark_file: str, what: str, too_big: str) -> CodePackage:
    """Any folder packed (a benchmark's, or the method packages `stbench launch` ships);
    `what` and `too_big` word the error of a folder over MAX_CODE_MB."""
    entries = _entries(folder)
    size = sum(path.stat().st_size for path in entries if path.is_file()
               and not path.is_symlink())
    if size > MAX_CODE_BYTES:
        raise UserError(f"{what} holds {size / 2**20:.1f} MB, over the {MAX_CODE_MB} MB that "
                        f"{too_big}")
    tar_bytes = _tar(folder, entries)
    return CodePackage(folder, benchmark_file, gzip.compress(tar_bytes, mtime=0),
                       hashlib.sha256(tar_bytes).hexdigest())


def _entries(folder: Path) -> list[Path]:
    """Every path to pack, sorted; symlinks must stay inside the folder."""
    found: list[Path] = []
    for current, dirs, names in os.walk(folder):
        here = Path(current)
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for name in [*dirs, *sorted(names)]:
            path = here / name
            if name.endswith(SKIPPED_SUFFIXES):
                continue
            if path.is_symlink() and not path.resolve().is_relative_to(folder):
                raise UserError(f"{path} links to {os.readlink(path)}, outside the benchmark "
                                f"folder {folder}: copy what it points to into the folder")
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def _tar(folder: Path, entries: list[Path]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in entries:
            info = tarfile.TarInfo(path.relative_to(folder).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                info.type = tarfile.SYMTYPE
                info.linkname = os.path.relpath(path.resolve(), path.parent)
                info.mode = 0o777
                archive.addfile(info)
            elif stat.S_ISDIR(mode):
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(info)
            elif stat.S_ISREG(mode):
                info.size = path.stat().st_size
                info.mode = 0o755 if mode & stat.S_IXUSR else 0o644
                with open(path, "rb") as handle:
                    archive.addfile(info, handle)
    return buffer.getvalue()


def find_archive(channel: Path) -> Path | None:
    """The one `.tar.gz` in a code channel's folder, None when the job has no code channel."""
    if not channel.is_dir():
        return None
    archives = sorted(channel.glob("*.tar.gz"))
    if len(archives) != 1:
        raise UserError(f"the '{channel.name}' channel {channel} must hold one .tar.gz, "
                        f"it holds {len(archives)}")
    return archives[0]


def unpack_channel(channel: Path, folder: Path) -> Path | None:
    """The channel's archive unpacked into `folder`, made afresh (a reused instance keeps
    /opt/ml); None when the job has no such channel."""
    archive = find_archive(channel)
    if archive is None:
        return None
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    unpack(archive, folder)
    return archive


def unpack(archive: Path, into: Path) -> None:
    """Into a fresh folder; members must stay inside it (the archive came over the network)."""
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")
            return
        root = into.resolve()
        for member in tar.getmembers():  # Pythons without extraction filters
            target = (root / member.name).resolve()
            if not target.is_relative_to(root) or member.islnk() or member.isdev():
                raise UserError(f"{archive}: member {member.name} would leave {into}")
        tar.extractall(into)  # noqa: S202 - checked above
