"""The endpoint's ECR registry without its binary: one line naming the fix, nothing left."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from stbench.emulator import registry
from stbench.model.errors import UserError


def test_missing_registry_binary_names_the_package(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    monkeypatch.setattr(registry.shutil, "which", lambda name: None)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(UserError, match=r"^the endpoint's ECR needs a Docker registry binary "
                                        r"\(Debian's docker-registry\): apt-get install "
                                        r"docker-registry$"):
        registry.Registry().start()
    assert list(tmp_path.iterdir()) == []
