"""Install stbench's dependencies into the images' venv (run inside `docker build`).

    deps.py lists PYPROJECT OUT         requirements.txt, build-requirements.txt and torch.txt
                                        (project.dependencies, build-system.requires and the
                                        `torch` extra) under OUT
    deps.py install PIP REQUIREMENTS [--pip-dir DIR] [--build-tools DIR] [--cpu-xgboost]
                    [--add-only STAGE]  pip-install REQUIREMENTS with the venv's PIP
    deps.py xgboost-shim DEST VERSION   write the `xgboost VERSION+cpu` wheel described below

Where the packages come from is decided by the pip folder (--pip-dir, default /pip), the
only build-context folder the install stages COPY (images/build.sh fills it as
build/image-pip/): with wheels/requirements.txt in it (the offline fallback, a wheelhouse built
on the host) the packages are installed from there with `--no-index`, for the runtime image
exactly that frozen set; otherwise from the index of its pip.conf, which carries the host's
index and CA certificate when it has them. The install stages are build stages: the pip
folder never reaches an image layer.

The first index request downloads the build tools (`--build-tools`); when it fails for want of
a connection, the script prints `deps: no package index reachable: <pip's error>` and exits
75, which build.sh takes as "use the offline wheelhouse".

`--add-only STAGE` (the GPU image's torch): every distribution already in the venv stays at
its version (a constraint), and the files of the ones added are copied under STAGE
(stage-dist.py beside this script), so the image can take them as one layer on top of an
image whose venv holds the same dependencies plus stbench.

xgboost: Syne Tune requires `xgboost`, whose PyPI wheel is a CUDA build (230 MB unpacked)
that pulls nvidia-nccl-cu12 (470 MB), three times the rest of the image. `--cpu-xgboost`
installs PyPI's CPU-only build `xgboost-cpu` of the resolved version instead (same `xgboost`
module, 18 MB), plus an empty wheel named `xgboost VERSION+cpu` that depends on it, so that
Syne Tune's requirement resolves and `pip check` stays clean.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

UNREACHABLE = 75  # EX_TEMPFAIL: build.sh falls back to the host-built wheelhouse
# pip's words for "the index cannot be reached": refused, unresolvable, timed out, TLS or proxy
NETWORK = (r"\[SSL: [A-Z_]+\][^(')]*", r"\[Errno -?\d+\][^'\")]*", r"ProxyError\('[^']*",
           r"[A-Za-z ]*timed out[^'\")]*", r"Name or service not known")


def log(message: str) -> None:
    print(f"deps: {message}", file=sys.stderr, flush=True)


def lists(pyproject: Path, out: Path) -> None:
    import tomllib  # Python 3.11+, which every image has

    data = tomllib.loads(pyproject.read_text())
    out.mkdir(parents=True, exist_ok=True)
    for name, items in (("requirements.txt", data["project"]["dependencies"]),
                        ("build-requirements.txt", data["build-system"]["requires"]),
                        ("torch.txt", data["project"]["optional-dependencies"]["torch"])):
        (out / name).write_text("".join(f"{item}\n" for item in items))


def xgboost_shim(dest: Path, version: str) -> Path:
    """An empty `xgboost VERSION+cpu` wheel that requires `xgboost-cpu==VERSION`."""
    name = f"xgboost-{version}+cpu"
    files = {
        f"{name}.dist-info/METADATA": (
            "Metadata-Version: 2.1\nName: xgboost\n"
            f"Version: {version}+cpu\n"
            "Summary: stbench shim: the xgboost module comes from xgboost-cpu (no CUDA, no NCCL)\n"
            f"Requires-Dist: xgboost-cpu=={version}\n"),
        f"{name}.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: stbench-wheelhouse\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n"),
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{name}.dist-info/RECORD,,")
    files[f"{name}.dist-info/RECORD"] = "\n".join(record) + "\n"
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / f"{name}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as whl:
        for path, text in files.items():
            info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            whl.writestr(info, text)
    return wheel


def pip_run(pip: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([pip, *args], capture_output=True, text=True)


def check(result: subprocess.CompletedProcess[str], what: str) -> None:
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        log(f"{what} failed")
        sys.exit(result.returncode or 1)


def pinned(report: dict, cpu_xgboost: bool) -> tuple[list[str], str | None]:
    """The resolved set as `name==version` lines, with xgboost swapped for its CPU build."""
    pins, xgboost = [], None
    for item in report["install"]:
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        key = re.sub(r"[-_.]+", "-", name).lower()
        if cpu_xgboost and key == "xgboost" and not version.endswith("+cpu"):
            xgboost = version
            pins += [f"xgboost=={version}+cpu", f"xgboost-cpu=={version}"]
        elif cpu_xgboost and key == "nvidia-nccl-cu12":
            continue  # only the CUDA xgboost needs it
        else:
            pins.append(f"{name}=={version}")
    return sorted(pins), xgboost


def probe(pip: str, requirements: Path, build_tools: Path | None) -> None:
    """The first request: the build tools (build-requirements.txt beside REQUIREMENTS), or
    pip's own wheel where none are wanted; exit 75 when no index answers."""
    with tempfile.TemporaryDirectory() as scratch:
        args = (["download", "--quiet", "--retries", "1", "--timeout", "20", "--only-binary",
                 ":all:", "--dest", str(build_tools or scratch)]
                + (["-r", str(requirements.parent / "build-requirements.txt")] if build_tools
                   else ["--no-deps", "pip"]))
        result = pip_run(pip, *args)
    if result.returncode != 0:
        found = [re.search(pattern, result.stdout + result.stderr) for pattern in NETWORK]
        reasons = [match.group().strip() for match in found if match]
        if not reasons:  # the index answered: a real error, not a reason to go offline
            check(result, "pip download of the build tools")
        log(f"no package index reachable: {reasons[0]}")
        sys.exit(UNREACHABLE)


def from_index(pip: str, requirements: Path, cpu_xgboost: bool, extra: list[str]) -> None:
    if not cpu_xgboost:
        check(pip_run(pip, "install", "--quiet", "-r", str(requirements), *extra), "pip install")
        return
    # Resolve first (metadata only), then install the resolved set with xgboost swapped.
    with tempfile.TemporaryDirectory() as work:
        report_path = Path(work) / "report.json"
        check(pip_run(pip, "install", "--quiet", "--dry-run", "--report", str(report_path),
                      "-r", str(requirements), *extra), "pip install --dry-run")
        pins, xgboost = pinned(json.loads(report_path.read_text()), cpu_xgboost)
        if xgboost:
            log(f"xgboost {xgboost}: installing its CPU build xgboost-cpu {xgboost}")
            xgboost_shim(Path(work) / "shim", xgboost)
        (Path(work) / "pinned.txt").write_text("".join(f"{pin}\n" for pin in pins))
        check(pip_run(pip, "install", "--quiet", "--find-links", str(Path(work) / "shim"),
                      "-r", str(Path(work) / "pinned.txt"), *extra), "pip install")


def from_wheelhouse(pip: str, wheels: Path, requirements: Path, build_tools: Path | None,
                    extra: list[str]) -> None:
    log(f"installing from the host-built wheelhouse (offline): {requirements}")
    check(pip_run(pip, "install", "--quiet", "--no-index", "--find-links", str(wheels),
                  "-r", str(requirements), *extra), "pip install --no-index")
    if build_tools:
        build_tools.mkdir(parents=True, exist_ok=True)
        for wheel in (wheels / "build-tools").glob("*.whl"):
            shutil.copyfile(wheel, build_tools / wheel.name)


def installed(pip: str) -> dict[str, str]:
    result = pip_run(pip, "list", "--format", "json")
    check(result, "pip list")
    return {item["name"]: item["version"] for item in json.loads(result.stdout)}


def install(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="deps.py install")
    parser.add_argument("pip")
    parser.add_argument("requirements", type=Path)
    parser.add_argument("--pip-dir", type=Path, default=Path("/pip"))
    parser.add_argument("--build-tools", type=Path)
    parser.add_argument("--cpu-xgboost", action="store_true")
    parser.add_argument("--add-only", type=Path, metavar="STAGE")
    args = parser.parse_args(argv)
    if (args.pip_dir / "pip.conf").is_file():
        os.environ["PIP_CONFIG_FILE"] = str(args.pip_dir / "pip.conf")
    before = installed(args.pip)
    with tempfile.TemporaryDirectory() as work:
        extra = []
        if args.add_only:
            constraints = Path(work) / "installed.txt"
            constraints.write_text("".join(f"{n}=={v}\n" for n, v in before.items()))
            extra = ["-c", str(constraints)]
        wheels = args.pip_dir / "wheels"
        if (wheels / "requirements.txt").is_file():
            # the runtime installs the wheelhouse's frozen set; an addition, what it asks for
            wanted = args.requirements if args.add_only else wheels / "requirements.txt"
            from_wheelhouse(args.pip, wheels, wanted, args.build_tools, extra)
        else:
            probe(args.pip, args.requirements, args.build_tools)
            from_index(args.pip, args.requirements, args.cpu_xgboost, extra)
    if args.add_only:
        added = sorted(set(installed(args.pip)) - set(before))
        log(f"staging {len(added)} added distributions under {args.add_only}")
        stage_dist = Path(__file__).with_name("stage-dist.py")
        python = str(Path(args.pip).with_name("python"))
        check(subprocess.run([python, str(stage_dist), str(args.add_only), *added],
                             capture_output=True, text=True), "stage-dist.py")


def main() -> int:
    command, args = sys.argv[1], sys.argv[2:]
    if command == "lists":
        lists(Path(args[0]), Path(args[1]))
    elif command == "install":
        install(args)
    elif command == "xgboost-shim":
        xgboost_shim(Path(args[0]), args[1])
    else:
        log(f"unknown command {command!r}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
