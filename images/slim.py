"""Split the runtime venv into the orchestrator's part and what only the trainer needs (run
inside `docker build`, images/runtime/Dockerfile).

    slim.py VENV EXTRAS

The orchestrator image is pulled by every orchestrator job, so it carries only what its code
paths load; the trainer image runs user scripts and keeps everything. This script

1. cuts the symbol tables and debug sections off the end of every shared object (both
   images; like `strip --strip-unneeded`, but in Python, so the build needs no binutils, and
   without moving any loaded byte, so the objects that auditwheel's patchelf rewrote, which
   `strip` is known to break, are left as they are);
2. moves out of VENV, to the same paths under EXTRAS (the trainer's extra layer):
   - the distributions the orchestrator never imports (DROP: Syne Tune declares statsmodels
     and xgboost, which none of its schedulers that stbench offers load; matplotlib declares
     fonttools, which only its PDF/PS/SVG output loads, stbench writes PNG; pip is for the
     trainer's requirements.txt),
   - headers, static libraries, Cython declarations and type stubs,
   - the byte code of modules the orchestrator does not import (WARM: what its entry point,
     every method and every back-end load); a module missing here compiles when imported;
3. checks that the WARM modules that imported before still import from VENV alone.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

DROP = ("pip", "hf-xet")
# packages whose modules, shared objects and libraries the orchestrator does not load go too
# (matplotlib writes PNG with PIL's core and imports fontTools' glyph list only; the rest of
# fontTools is its PDF/PS/SVG font subsetting, the rest of PIL other image formats)
PRUNE = ("fontTools", "PIL", "pillow.libs")
JUNK = (".h", ".hpp", ".pxd", ".pxi", ".a", ".pyi")
# data no code path of the orchestrator reads: statsmodels' example data sets, matplotlib's
# sample data, toolbar icons and the PDF/PS core fonts and STIX fonts (plots use DejaVu Sans)
DATA = ("statsmodels/datasets/*/*.csv", "matplotlib/mpl-data/sample_data/**/*",
        "matplotlib/mpl-data/images/*", "matplotlib/mpl-data/fonts/afm/*",
        "matplotlib/mpl-data/fonts/pdfcorefonts/*", "matplotlib/mpl-data/fonts/ttf/STIX*")
# the AWS services whose API models botocore keeps (the clients stbench creates); the others'
# models are the trainer's
AWS = ("sagemaker", "s3", "logs", "sts", "iam", "ecr", "service-quotas", "cloudwatch")
# What the orchestrator imports from its dependencies: stbench's own imports and the modules
# that Syne Tune's searchers, scikit-learn, pandas and matplotlib import while a study runs
# (found with a trace of every method on every back-end). Their byte code stays; a module
# missing here still imports, compiled when first loaded.
WARM = (
    "syne_tune.optimizer.baselines", "syne_tune.blackbox_repository",
    "syne_tune.blackbox_repository.simulated_tabular_backend",
    "syne_tune.blackbox_repository.blackbox_surrogate",
    "syne_tune.backend.simulator_backend.simulator_backend",
    "syne_tune.optimizer.schedulers.searchers.bore",
    "syne_tune.optimizer.schedulers.searchers.kde",
    "syne_tune.optimizer.schedulers.searchers.conformal.conformal_quantile_regression_searcher",
    "syne_tune.optimizer.schedulers.transfer_learning.quantile_based.quantile_based_searcher",
    "sklearn.ensemble", "sklearn.gaussian_process", "sklearn.model_selection", "sklearn.pipeline",
    "sklearn.preprocessing", "sklearn.neural_network", "sklearn.datasets", "sklearn.metrics",
    "sklearn.calibration", "scipy.optimize", "scipy.stats", "scipy.linalg", "statsmodels.api",
    "xgboost", "pandas", "pandas.core.reshape.reshape", "narwhals._pandas_like.namespace",
    "narwhals._pandas_like.dataframe", "narwhals._pandas_like.group_by",
    "narwhals._pandas_like.selectors", "narwhals._pandas_like.series_cat",
    "narwhals._pandas_like.series_dt", "narwhals._pandas_like.series_list",
    "narwhals._pandas_like.series_map", "narwhals._pandas_like.series_str",
    "narwhals._pandas_like.series_struct", "narwhals._interchange.dataframe",
    "narwhals.stable.v2._namespace", "matplotlib.pyplot", "matplotlib.backends.backend_agg",
    "PIL.PngImagePlugin", "PIL.BmpImagePlugin", "PIL.GifImagePlugin", "PIL.JpegImagePlugin",
    "PIL.PpmImagePlugin", "boto3", "boto3.s3.transfer", "s3transfer.subscribers", "docker",
    "yaml", "huggingface_hub",
)
# run after the imports: a plot as `stbench results` writes it, and a client of each service
CHECK = (
    "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt, tempfile, os\n"
    "fig, ax = plt.subplots()\nax.plot([1, 2], [3, 4], label='best so far')\nax.legend()\n"
    "ax.set_title('check')\nfig.savefig(os.path.join(tempfile.mkdtemp(), 'check.png'))\n"
    "import boto3\nfor service in {aws!r}:\n"
    "    boto3.client(service, region_name='us-east-1', aws_access_key_id='k',\n"
    "                 aws_secret_access_key='s')\n"
)


def strip_elf(path: Path) -> int:
    """Drop the sections that lie wholly after the last loaded byte of a 64-bit little-endian
    ELF file (symbol tables, debug information) and write the section headers after what
    stays; returns the bytes saved (0: the file is left as it was)."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return 0
    phoff, shoff = struct.unpack_from("<QQ", data, 0x20)
    phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from("<HHHHH", data, 0x36)
    if not shoff or not shnum or shentsize != 64 or phentsize != 56:
        return 0
    end = phoff + phnum * phentsize
    for i in range(phnum):
        offset, filesz = struct.unpack_from("<QQ", data, phoff + i * 56 + 8)[0], \
            struct.unpack_from("<Q", data, phoff + i * 56 + 32)[0]
        end = max(end, offset + filesz)
    # name, type, flags, addr, offset, size, link, info, addralign, entsize
    sections = [list(struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * 64))
                for i in range(shnum)]
    alloc, nobits = 0x2, 8
    for sec in sections:
        if sec[2] & alloc and sec[1] != nobits:
            end = max(end, sec[4] + sec[5])
    if shoff < end:
        return 0
    keep = [i for i, sec in enumerate(sections)
            if i in (0, shstrndx) or sec[1] == nobits or sec[4] + sec[5] <= end]
    index = {old: new for new, old in enumerate(keep)}
    out = bytearray(data[:end])
    for i in keep:
        sec = sections[i]
        if sec[1] != nobits and sec[5] and sec[4] + sec[5] > end:  # the section names
            out += bytes(-len(out) % max(sec[8], 1))
            out_offset = len(out)
            out += data[sec[4]:sec[4] + sec[5]]
            sec[4] = out_offset
        sec[6] = index.get(sec[6], 0)
        if sec[2] & 0x40 or sec[1] in (4, 9):  # SHF_INFO_LINK, RELA, REL: info is an index
            sec[7] = index.get(sec[7], 0)
    out += bytes(-len(out) % 8)
    new_shoff = len(out)
    for i in keep:
        out += struct.pack("<IIQQQQIIQQ", *sections[i])
    struct.pack_into("<Q", out, 0x28, new_shoff)
    struct.pack_into("<HH", out, 0x3C, len(keep), index[shstrndx])
    if len(out) >= len(data):
        return 0
    path.write_bytes(out)
    return len(data) - len(out)


def move(path: Path, extras: Path) -> int:
    """Move one file to the same path under EXTRAS; its size."""
    target = extras / path.relative_to("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    size = path.stat().st_size
    shutil.move(path, target)
    return size


def loaded_files(python: Path, modules: list[str], strict: bool) -> tuple[set[str], list[str]]:
    """Every file that importing MODULES and running CHECK loads (modules' sources and the
    shared objects mapped into the process), and the modules that imported. No byte code is
    written meanwhile, so the strict second run sees only what the image has. Not strict, a
    module that does not import is left out: WARM names modules of today's versions."""
    code = ("import importlib, json, os, sys\n"
            "imported = []\n"
            f"for name in {modules!r}:\n"
            "    try:\n"
            "        importlib.import_module(name)\n"
            "        imported.append(name)\n"
            "    except ImportError:\n"
            f"        if {strict!r}:\n"
            "            raise\n"
            + CHECK.format(aws=AWS) +
            "files = {os.path.realpath(m.__file__) for m in list(sys.modules.values())\n"
            "         if getattr(m, '__file__', None)}\n"
            "with open('/proc/self/maps') as maps:\n"
            "    files.update(line.split()[5] for line in maps if len(line.split()) > 5)\n"
            "print(json.dumps([sorted(files), imported]))\n")
    result = subprocess.run([str(python), "-B", "-c", code], capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise SystemExit("slim: the orchestrator's modules do not import")
    files, imported = json.loads(result.stdout.splitlines()[-1])
    return set(files), imported


def to_move(site: Path, loaded: set[str]) -> dict[str, list[Path]]:
    """What goes to the trainer's layer, by kind."""
    found: dict[str, list[Path]] = {"distributions": [], "unused modules": [], "headers, stubs": [],
                                    "data": [], "AWS API models": [], "byte code": []}
    dists = {re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d
             for d in importlib.metadata.distributions(path=[str(site)])}
    dropped: set[Path] = set()
    for name in DROP:
        if name in dists:
            for entry in dists[name].files or ():
                dropped.add(Path(os.path.normpath(dists[name].locate_file(entry))))
    found["distributions"] = sorted(p for p in dropped if p.is_file())
    for top in PRUNE:
        for path in sorted((site / top).rglob("*")):
            if path.is_file() and path not in dropped and str(path) not in loaded and (
                    top.endswith(".libs") or path.suffix == ".py" or ".so" in path.name):
                found["unused modules"].append(path)
    for pattern in DATA:
        found["data"] += sorted(p for p in site.glob(pattern) if p.is_file())
    models = site / "botocore" / "data"
    for folder in sorted(models.iterdir()) if models.is_dir() else ():
        if folder.is_dir() and folder.name not in AWS:
            found["AWS API models"] += sorted(p for p in folder.rglob("*") if p.is_file())
    taken = {p for paths in found.values() for p in paths} | dropped
    for path in sorted(site.rglob("*")):
        if not path.is_file() or path in taken:
            continue
        if path.suffix in JUNK:
            found["headers, stubs"].append(path)
        elif path.parent.name == "__pycache__" and path.suffix == ".pyc":
            source = path.parent.parent / (path.name.split(".")[0] + ".py")
            if str(source) not in loaded or source in taken:
                found["byte code"].append(path)
    return found


def main() -> int:
    venv, extras = Path(sys.argv[1]), Path(sys.argv[2])
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig."
                                "get_paths()['purelib'])"], capture_output=True, text=True,
                               check=True).stdout.strip())
    stripped = sum(strip_elf(p) for p in sorted(site.rglob("*.so*"))
                   if p.is_file() and not p.is_symlink())
    print(f"slim: {stripped / 1e6:.0f} MB of symbol tables and debug sections cut", flush=True)
    loaded, imported = loaded_files(python, list(WARM), strict=False)
    if len(imported) < len(WARM):
        print(f"slim: not in these versions: {sorted(set(WARM) - set(imported))}", flush=True)
    for what, paths in to_move(site, loaded).items():
        size = sum(move(path, extras) for path in paths)
        print(f"slim: {what}: {len(paths)} files, {size / 1e6:.0f} MB for the trainer only",
              flush=True)
    for folder in sorted(site.rglob("*"), reverse=True):  # folders the moves left empty
        if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
            folder.rmdir()
    loaded_files(python, imported, strict=True)  # what the orchestrator loads is still there
    return 0


if __name__ == "__main__":
    sys.exit(main())
