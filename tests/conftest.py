"""Test-wide safety: no test may reach AWS or an instance-metadata endpoint."""

from __future__ import annotations

import os

# botocore looks for credentials on the EC2 metadata endpoint when none are configured:
# tests must never send that traffic, and must not find a developer's real credentials.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
             "AWS_SESSION_TOKEN"):
    os.environ.pop(name, None)
os.environ.setdefault("AWS_CONFIG_FILE", os.devnull)
os.environ.setdefault("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
