"""The example method package (examples/stbench-method-example), pip-installed into a folder
of its own for a test: on sys.path while the test runs, never in the shared environment."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from stbench.methods.registry import all_methods

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "stbench-method-example"


def install_example(tmp: Path) -> Path:
    """`pip install` of a copy of the example (the build leaves nothing in the repository)
    into `tmp/site`, which it returns."""
    source = tmp / EXAMPLE.name
    shutil.copytree(EXAMPLE, source)
    target = tmp / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", "--target", str(target), str(source)],
                   check=True)
    assert (target / "stbench_method_example").is_dir()
    return target


@contextmanager
def on_path(site: Path) -> Iterator[None]:
    """The installed package visible to stbench's entry-point lookup, then gone again."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(site))
        all_methods.cache_clear()
        try:
            yield
        finally:
            all_methods.cache_clear()
    all_methods.cache_clear()
