"""A user benchmark's folder in the trainer: unpacked from the `code` channel, its
`requirements.txt` installed before the script starts.

The folder arrives as `/opt/ml/input/data/code/<sha256>.tar.gz` (stbench/model/code_package.py)
and is unpacked into `/opt/ml/code`, where AWS's training toolkit puts user code too. The
requirements go to `pip install --target <dir>`, with `<dir>` named by a hash of the file
and of the files in the folder that it names (and the Python version) inside the warm-pool
cache when the job has one, so a trial on a reused instance finds them installed and skips
pip, and a changed wheel behind an unchanged requirements.txt is installed again; without
a cache, into a job-local folder. The script then runs with that folder first on PYTHONPATH.
pip runs in the code folder, so a requirement such as `./wheels/mypkg-1.0-py3-none-any.whl`
names a wheel shipped beside the script (no index needed).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from stbench.model.code_package import CODE_CHANNEL, REQUIREMENTS, unpack_channel
from stbench.model.container_contract import WARMPOOL_CACHE_ENV
from stbench.model.errors import UserError
from stbench.trainer.runner import StopSignals

PIP_TAIL_LINES = 8  # of pip's output, in the FailureReason (1024 characters in all)


def code_folder(root: Path) -> Path:
    return root / "code"


def unpacked_benchmark(root: Path, name: str, log: Callable[[str], None]) -> str:
    """The benchmark to load: `name` itself without a code channel, else the path of that
    YAML (`name` is its file name) in the freshly unpacked folder."""
    folder = code_folder(root)
    started = time.monotonic()
    archive = unpack_channel(root / "input" / "data" / CODE_CHANNEL, folder)
    if archive is None:
        return name
    log(f"unpacked {archive.name} into {folder} in {time.monotonic() - started:.2f} s")
    yaml = folder / Path(name).name
    if not yaml.is_file():
        raise UserError(f"benchmark file {Path(name).name} is not in the '{CODE_CHANNEL}' "
                        f"channel's archive {archive.name}")
    return str(yaml)


def requirements_target(root: Path, requirements: Path) -> Path:
    """Where the requirements of this content are (to be) installed."""
    digest = requirements_digest(requirements)[:16]
    key = f"py{sys.version_info.major}.{sys.version_info.minor}-{digest}"
    cache = os.environ.get(WARMPOOL_CACHE_ENV)
    base = Path(cache) / "stbench-requirements" if cache else root / "requirements"
    return base / key


def requirements_digest(requirements: Path) -> str:
    """SHA-256 of a requirements file and of every file inside its folder that it names: a
    wheel or sdist, a local project's folder, a `-r`/`-c` file (and what that one names), a
    `--find-links` folder. Names that are no path there (`numpy>=2`) count by their text."""
    folder = requirements.parent.resolve()
    digest = hashlib.sha256()
    seen: set[Path] = set()
    pending = [requirements.resolve()]
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            digest.update(f"{file.relative_to(folder).as_posix()}\0".encode())
            digest.update(hashlib.sha256(file.read_bytes()).digest())
        if path.is_file() and path.suffix == ".txt":  # a requirements or constraints file
            pending.extend(_named_paths(path, folder))
    return digest.hexdigest()


def _named_paths(requirements: Path, folder: Path) -> list[Path]:
    """The paths inside `folder` that a requirements file's lines name."""
    found = []
    for line in requirements.read_text(errors="replace").splitlines():
        line = line.split(" #", 1)[0].strip()
        if line.startswith("#"):
            continue
        for token in line.split():
            text = token.split("=", 1)[1] if token.startswith("-") and "=" in token else token
            text = text.removeprefix("file://").removeprefix("file:").split("#", 1)[0]
            text = text.split("[", 1)[0]  # ./mypkg[extra]
            if not text or text.startswith("-"):
                continue
            path = (requirements.parent / text).resolve()
            if path.is_relative_to(folder) and path.exists():
                found.append(path)
    return found


def install_requirements(root: Path, stops: StopSignals, log: Callable[[str], None]) -> None:
    """Install the code folder's requirements.txt (if any) and put it on the PYTHONPATH of the
    script; UserError with pip's last lines when pip fails."""
    requirements = code_folder(root) / REQUIREMENTS
    if not requirements.is_file():
        return
    target = requirements_target(root, requirements)
    if target.is_dir():
        log(f"requirements.txt already installed in {target} (reused instance): skipping pip")
    else:
        started = time.monotonic()
        _pip_install(requirements, target, stops, log)
        if stops.stop_signal is not None:
            return  # the caller reports the stop
        log(f"installed requirements.txt into {target} in {time.monotonic() - started:.1f} s")
    # the trainer runs one script and ends: its own environment is the script's
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(target), os.environ.get("PYTHONPATH", "")) if p)


def _pip_install(requirements: Path, target: Path, stops: StopSignals,
                 log: Callable[[str], None]) -> None:
    """Into a temporary folder renamed into place: a stopped install leaves nothing that
    a later trial would take for a finished one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    partial = target.parent / f".{target.name}.partial-{os.getpid()}"
    argv = [sys.executable, "-m", "pip", "install", "--no-input", "--disable-pip-version-check",
            "--no-cache-dir", "--target", str(partial), "-r", str(requirements)]
    log("installing requirements.txt: " + " ".join(argv[3:]))
    tail: deque[str] = deque(maxlen=PIP_TAIL_LINES)
    child = subprocess.Popen(argv, cwd=requirements.parent, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             start_new_session=True)
    stops.attach(child)
    assert child.stdout is not None
    for raw in child.stdout:
        line = raw.decode("utf-8", errors="replace").rstrip()
        sys.stderr.write(f"pip: {line}\n")
        if line.strip():
            tail.append(line.strip())
    code = child.wait()
    if code != 0 or stops.stop_signal is not None:
        shutil.rmtree(partial, ignore_errors=True)
        if stops.stop_signal is not None:
            return  # the caller reports the stop
        raise UserError(f"installing requirements.txt failed (pip exit code {code}): "
                        + " | ".join(tail))
    try:
        os.rename(partial, target)
    except OSError:  # another trial on this instance finished first: keep its copy
        shutil.rmtree(partial, ignore_errors=True)
