"""images/slim.py's symbol cut: a shared object loses its symbol tables and debug sections and
still loads and works; a file patched at its end is left as it was."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("slim", REPO / "images" / "slim.py")
assert SPEC and SPEC.loader
slim = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(slim)


def copied_package(tmp_path: Path, name: str) -> Path:
    module = pytest.importorskip(name)
    source = Path(module.__file__).parent
    if not list(source.glob("*.so")):
        pytest.skip(f"{name} has no shared object here")
    target = tmp_path / name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def solves(folder: Path) -> subprocess.CompletedProcess[str]:
    code = ("import kiwisolver as k\n"
            "x = k.Variable('x'); s = k.Solver()\n"
            "s.addConstraint(x == 3); s.updateVariables()\n"
            "print(k.__file__, x.value())\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=folder)


def test_a_stripped_extension_module_is_smaller_and_still_works(tmp_path: Path) -> None:
    package = copied_package(tmp_path, "kiwisolver")
    (extension,) = package.glob("*.so")
    before = extension.stat().st_size

    saved = slim.strip_elf(extension)

    assert saved > 0 and extension.stat().st_size == before - saved
    assert extension.read_bytes()[:4] == b"\x7fELF"
    done = solves(tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(package / "__init__.py"), "3.0"]
    assert slim.strip_elf(extension) == 0  # nothing left to cut


def test_a_file_with_data_after_its_section_headers_is_left_alone(tmp_path: Path) -> None:
    """patchelf may put loaded data after everything else: such a file keeps every byte."""
    package = copied_package(tmp_path, "kiwisolver")
    (extension,) = package.glob("*.so")
    data = bytearray(extension.read_bytes())
    # a program header that loads the file's last byte, as a segment patchelf appended would
    program_headers = int.from_bytes(data[0x20:0x28], "little")
    last = program_headers + 56 * (int.from_bytes(data[0x38:0x3A], "little") - 1)
    data[last + 8:last + 16] = (len(data) - 1).to_bytes(8, "little")  # p_offset
    data[last + 32:last + 40] = (1).to_bytes(8, "little")  # p_filesz
    extension.write_bytes(bytes(data))

    assert slim.strip_elf(extension) == 0
    assert extension.read_bytes() == bytes(data)
    assert slim.strip_elf(package / "__init__.py") == 0  # not ELF
