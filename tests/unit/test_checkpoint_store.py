"""Job checkpoint stores: what a restarted job finds, and what a running job uploads."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from stbench.backends.jobs.checkpoints import FolderStore, S3Store, store_for
from stbench.model.errors import UserError


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    for name, value in [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")]:
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket="ckpt-bucket")
        yield client


def test_s3_store_uploads_only_what_changed_and_restores_it(s3: object,
                                                            tmp_path: Path) -> None:
    source = tmp_path / "checkpoints"
    (source / "exp").mkdir(parents=True)
    (source / "exp" / "results.jsonl").write_text("row 1\n")
    (source / "exp" / ".results.jsonl.x.tmp").write_text("half")  # a writer's temp file
    store = S3Store("ckpt-bucket", "/studies/t/orchestrator/", s3)
    calls: list[str] = []
    real_upload = s3.upload_file
    s3.upload_file = lambda path, bucket, key: (calls.append(key), real_upload(path, bucket, key))
    store.upload(source)
    store.upload(source)  # nothing changed: nothing sent
    assert calls == ["studies/t/orchestrator/exp/results.jsonl"]
    (source / "exp" / "results.jsonl").write_text("row 1\nrow 2\n")
    os.utime(source / "exp" / "results.jsonl", ns=(1, 10**18))
    store.upload(source)
    assert len(calls) == 2

    restored = tmp_path / "restarted"
    store_for("s3://ckpt-bucket/studies/t/orchestrator/", s3).restore(restored)
    assert (restored / "exp" / "results.jsonl").read_text() == "row 1\nrow 2\n"
    assert not (restored / "exp" / ".results.jsonl.x.tmp").exists()


def test_folder_store_round_trip_and_bad_uris(tmp_path: Path) -> None:
    store = store_for(f"file://{tmp_path / 'store'}")
    assert isinstance(store, FolderStore)
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "model.pt").write_text("weights")
    store.upload(tmp_path / "ckpt")
    store.restore(tmp_path / "back")
    assert (tmp_path / "back" / "model.pt").read_text() == "weights"
    with pytest.raises(UserError, match="neither file:// nor s3://"):
        store_for("gs://bucket/prefix")
