"""Test-wide safety: no test may reach AWS or an instance-metadata endpoint, and no test
leaves stbench's SIGTERM handler behind for pytest."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

# botocore looks for credentials on the EC2 metadata endpoint when none are configured:
# tests must never send that traffic, and must not find a developer's real credentials.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
             "AWS_SESSION_TOKEN"):
    os.environ.pop(name, None)
os.environ.setdefault("AWS_CONFIG_FILE", os.devnull)
os.environ.setdefault("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.fixture(autouse=True)
def keep_sigterm_handler() -> Iterator[None]:
    """stbench's CLI (`main`) installs a SIGTERM handler; give pytest its own back."""
    handler = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, handler)
