"""The Service Quotas pre-flight of `run --backend sagemaker` and `launch`, against moto.

moto serves STS, IAM, S3, ECR and SageMaker's CreateTrainingJob, but not ListServiceQuotas:
each test states the account's quotas, and every botocore session answers ListServiceQuotas
from them as AWS pages it (an empty first page with a token, then one quota a page).
"""

from __future__ import annotations

import json
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import botocore.handlers
import pytest
import test_sagemaker_checks as moto_setup

from stbench.cli.main import main

aws = moto_setup.aws  # the fixture: a valid SageMaker setup in moto (role, bucket, image)
BUCKET, IMAGE, REGION, ROLE, S3_ROOT = (moto_setup.BUCKET, moto_setup.IMAGE, moto_setup.REGION,
                                        moto_setup.ROLE, moto_setup.S3_ROOT)
push_orchestrator = moto_setup.push_orchestrator

LAUNCH = ["launch", "--role", ROLE, "--s3_root", S3_ROOT, "--image", IMAGE, "--region", REGION,
          "--benchmark", "synthetic_curves", "--method", "ASHA", "RS", "--num_seeds", "2",
          "--n_workers", "2"]  # 4 experiments at once: 8 trials on ml.c5.xlarge, 4 orchestrators
TRAINING = "ml.c5.xlarge for training job usage"
WARM = "ml.c5.xlarge for training warm pool usage"
ORCHESTRATORS = "ml.m5.large for training job usage"
pytestmark = pytest.mark.usefixtures("isolated_aws_env")


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """`account(quotas)` sets the account's SageMaker quotas; `account(denied=True)` refuses
    to show them, as Service Quotas does without `servicequotas:` permissions."""
    monkeypatch.setattr(signal, "signal", lambda *a: None)  # keep pytest's SIGTERM handler
    state: dict[str, Any] = {"listed": [], "denied": False}

    def answer(params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        if state["denied"]:
            return SimpleNamespace(status_code=400, headers={}), {
                "Error": {"Code": "AccessDeniedException", "Message": "not authorized"},
                "ResponseMetadata": {"HTTPStatusCode": 400}}
        listed = state["listed"]
        page = int(json.loads(params["body"]).get("NextToken") or 0)
        body: dict[str, Any] = {"Quotas": listed[page - 1:page] if page else []}
        if page < len(listed):
            body["NextToken"] = str(page + 1)
        return SimpleNamespace(status_code=200, headers={}), body

    handler = ("before-call.service-quotas.ListServiceQuotas", answer)
    monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS",
                        [*botocore.handlers.BUILTIN_HANDLERS, handler])

    def set_account(quotas: dict[str, float] | None = None, denied: bool = False) -> None:
        state["denied"] = denied
        state["listed"] = [{"QuotaName": name, "QuotaCode": f"L-{index:08X}", "Value": value,
                            "ServiceCode": "sagemaker"}
                           for index, (name, value) in enumerate((quotas or {}).items())]

    return set_account


def jobs(aws: dict[str, Any]) -> list[str]:
    summaries = aws["session"].client("sagemaker").list_training_jobs()["TrainingJobSummaries"]
    return [job["TrainingJobName"] for job in summaries]


def study_records(aws: dict[str, Any]) -> list[str]:
    listing = aws["session"].client("s3").list_objects_v2(Bucket=BUCKET)
    return [item["Key"] for item in listing.get("Contents", [])]


def fails_in_one_line(capsys: pytest.CaptureFixture, argv: list[str], *needles: str) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("stbench: error: "), lines
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_launch_with_the_default_warm_pool_quota_creates_nothing(
        aws: dict[str, Any], account: Callable[..., None],
        capsys: pytest.CaptureFixture) -> None:
    """AWS's warm-pool quota is 0 until raised: warm pools would silently never be kept."""
    push_orchestrator(aws["session"])
    account({ORCHESTRATORS: 20, TRAINING: 20, WARM: 0})
    line = fails_in_one_line(
        capsys, [*LAUNCH, "--experiment_tag", "wp", "--warm_pool", "1"],
        f"quota '{WARM}' is 0 in {REGION}, but this study (4 experiments at once",
        "needs 8", "--quota-code L-00000002 --desired-value 8", "--no_quota_check")
    assert "without --warm_pool" in line
    assert jobs(aws) == [] and study_records(aws) == []

    assert main([*LAUNCH, "--experiment_tag", "wp", "--warm_pool", "0"]) == 0
    assert len(jobs(aws)) == 4, "without warm pools only the training quota counts"
    assert main([*LAUNCH, "--experiment_tag", "wp2", "--warm_pool", "--no_quota_check"]) == 0
    assert len(jobs(aws)) == 8


def test_launch_counts_its_orchestrator_jobs(aws: dict[str, Any], account: Callable[..., None],
                                            capsys: pytest.CaptureFixture) -> None:
    push_orchestrator(aws["session"])
    account({ORCHESTRATORS: 3, TRAINING: 8, WARM: 8})
    fails_in_one_line(capsys, [*LAUNCH, "--experiment_tag", "orc", "--warm_pool"],
                      f"quota '{ORCHESTRATORS}' is 3", "needs 4", "launch fewer methods")
    assert jobs(aws) == []
    account({ORCHESTRATORS: 4, TRAINING: 8, WARM: 8})
    assert main([*LAUNCH, "--experiment_tag", "orc", "--warm_pool"]) == 0
    assert len(jobs(aws)) == 4


def test_run_needs_n_workers_instances_and_writes_nothing_without_them(
        aws: dict[str, Any], account: Callable[..., None], capsys: pytest.CaptureFixture,
        tmp_path: Path) -> None:
    account({TRAINING: 2})
    fails_in_one_line(
        capsys, ["run", "--backend", "sagemaker", "--role", ROLE, "--s3_root", S3_ROOT,
                 "--image", IMAGE, "--region", REGION, "--benchmark", "synthetic_curves",
                 "--method", "RS", "--n_workers", "4", "--results_root", str(tmp_path / "r")],
        f"quota '{TRAINING}' is 2 in {REGION}, but this run (--n_workers 4) needs 4",
        "lower --n_workers")
    assert not (tmp_path / "r").exists() and jobs(aws) == []


def test_quotas_the_user_may_not_read_only_warn(aws: dict[str, Any], account: Callable[..., None],
                                                caplog: pytest.LogCaptureFixture) -> None:
    push_orchestrator(aws["session"])
    account(denied=True)
    with caplog.at_level(logging.WARNING):
        assert main([*LAUNCH, "--experiment_tag", "blind", "--warm_pool"]) == 0
    assert len(jobs(aws)) == 4
    [warning] = [m for m in caplog.messages if "quota" in m]
    assert "no permission" in warning and "docs/iam.md" in warning
