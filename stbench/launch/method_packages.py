"""Methods of installed packages, shipped with a launched study to its orchestrator jobs.

`stbench run` finds a package's method through its entry point in this environment; a
launched orchestrator runs in the orchestrator image, which holds only stbench's methods. So
`stbench launch` copies each such package, its importable top-level modules (as installed,
editable installs too) and its entry points, into one folder, packs it like a benchmark
folder (`code_package.py`: reproducible, named by its digest, stored once per study), and
gives it to every orchestrator job as the `methods` channel; the orchestrator puts the
unpacked folder first on sys.path before it builds the study (`cli/orchestrator.py`).

What travels is the package's own code: its other dependencies must be in the orchestrator
image. Compiled extension modules are refused in one line: the image's Python and platform
may not load them.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from stbench.methods.plugins import GROUP
from stbench.methods.registry import get_method
from stbench.model.code_package import CodePackage, pack_folder
from stbench.model.errors import UserError
from stbench.model.spec import ExperimentSpec

COMPILED = (".so", ".pyd", ".dylib")


def pack_method_packages(spec: ExperimentSpec) -> CodePackage | None:
    """The installed packages of the spec's methods in one archive; None when all are
    built in."""
    packages = sorted({p for name in spec.method if (p := get_method(name).package)})
    if not packages:
        return None
    with tempfile.TemporaryDirectory(prefix="stbench-methods-") as tmp:
        site = Path(tmp)
        for package in packages:
            _copy_distribution(package, site)
        return pack_folder(site, "", f"method package(s) {', '.join(packages)}",
                           "travel with each orchestrator job: keep data out of the package")


def _copy_distribution(package: str, site: Path) -> None:
    try:
        dist = distribution(package)
    except PackageNotFoundError:
        raise UserError(f"cannot find the installed package {package} to ship with the "
                        "study; reinstall it") from None
    points = [p for p in dist.entry_points if p.group == GROUP]
    tops = set((dist.read_text("top_level.txt") or "").split())
    tops |= {p.value.split(":")[0].split(".")[0] for p in points}
    for top in sorted(tops):
        found = importlib.util.find_spec(top)
        if found is None or (found.origin is None and not found.submodule_search_locations):
            raise UserError(f"cannot find module {top} of package {package} to ship with the "
                            "study; reinstall the package")
        if found.submodule_search_locations:
            shutil.copytree(list(found.submodule_search_locations)[0], site / top,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(str(found.origin), site / Path(str(found.origin)).name)
    compiled = sorted(p.name for p in site.rglob("*") if p.suffix in COMPILED)
    if compiled:
        raise UserError(f"package {package} holds compiled modules ({', '.join(compiled)}), "
                        "which `stbench launch` does not ship: run the study with `stbench run` "
                        "(any --backend), or pass --orchestrator_image naming an image with "
                        f"{package} installed")
    name = dist.metadata["Name"].replace("-", "_")
    info = site / f"{name}-{dist.version}.dist-info"  # what entry-point discovery reads
    info.mkdir()
    (info / "METADATA").write_text(dist.read_text("METADATA") or
                                   f"Metadata-Version: 2.1\nName: {package}\n")
    (info / "entry_points.txt").write_text(dist.read_text("entry_points.txt") or "")
