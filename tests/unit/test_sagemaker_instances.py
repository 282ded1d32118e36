"""Instance types from botocore's service model and the Service Quotas pre-flight.

Service Quotas is answered by botocore's Stubber, which also validates each request against
the service model; the instance types are the installed botocore's TrainingInstanceType enum.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from stbench.backends.jobs.sagemaker_instances import (
    InstanceDemand,
    check_instance_type,
    check_quotas,
    read_quotas,
    training_instance_types,
)
from stbench.launch.remote import ORCHESTRATOR_INSTANCE
from stbench.launch.study_file import load_study
from stbench.model.catalog import builtin_names, load_benchmark
from stbench.model.errors import UserError
from stbench.model.prices import PRICES_ENV

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
G4 = "ml.g4dn.xlarge"
TRAINING = f"{G4} for training job usage"
WARM = f"{G4} for training warm pool usage"
SERVICE = {"ServiceCode": "sagemaker"}


# --- instance types -----------------------------------------------------------------------


@pytest.mark.parametrize("name", builtin_names())
def test_every_builtin_benchmark_runs_on_a_sagemaker_training_instance(name: str) -> None:
    instance_type = load_benchmark(name).for_backend("sagemaker").instance_type
    assert instance_type in training_instance_types()


@pytest.mark.parametrize("study", sorted((REPO / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_study_and_its_orchestrators_use_training_instances(study: Path) -> None:
    valid = training_instance_types()
    assert ORCHESTRATOR_INSTANCE in valid
    for spec in load_study(study, {}).specs:
        resolved = spec.resolved(load_benchmark(spec.benchmark).with_fixed_values({}))
        assert resolved.instance_type in valid, (study.name, spec.benchmark)


@pytest.mark.parametrize(
    ("asked", "offered"),
    [
        ("ml.c5.large", "ml.c5.xlarge"),  # a real type on EC2, not for SageMaker training
        ("ml.m5.xlarg", "ml.m5.xlarge"),
        ("m5.xlarge", "ml.m5.xlarge"),  # the EC2 habit: no ml. prefix
        ("ML.P3.2XLARGE", "ml.p3.2xlarge"),
    ],
)
def test_a_type_sagemaker_does_not_train_on_is_one_line_with_close_valid_ones(
        asked: str, offered: str) -> None:
    with pytest.raises(UserError) as info:
        check_instance_type(asked)
    message = str(info.value)
    assert "\n" not in message and f"'{asked}' is not a SageMaker training instance type" in message
    suggested = message.split("e.g. ")[1].split(", ")
    assert offered in suggested and len(suggested) == 3
    assert set(suggested) <= set(training_instance_types())


def test_a_valid_type_without_a_price_is_only_a_warning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    table = tmp_path / "prices.yaml"
    table.write_text("ml.m5.large: 0.115\n")
    monkeypatch.setenv(PRICES_ENV, str(table))
    with caplog.at_level(logging.WARNING):
        check_instance_type("ml.m5.large")
        assert caplog.messages == []
        check_instance_type("ml.m5.xlarge")
    [warning] = caplog.messages
    assert "no price for ml.m5.xlarge" in warning and PRICES_ENV in warning


# --- Service Quotas -----------------------------------------------------------------------


@pytest.fixture
def quotas() -> Iterator[tuple[Any, Stubber]]:
    """A Service Quotas client whose answers the test queues, and a session handing it out."""
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name=REGION)
    client = session.client("service-quotas")
    with Stubber(client) as stubber:
        yield SimpleNamespace(client=lambda *args, **kwargs: client), stubber
        stubber.assert_no_pending_responses()


def quota(name: str, value: float) -> dict[str, Any]:
    return {"QuotaName": name, "QuotaCode": "L-1A2B3C4D", "Value": value,
            "ServiceCode": "sagemaker"}


def listing(stubber: Stubber, *pages: list[dict[str, Any]],
            operation: str = "list_service_quotas") -> None:
    """Queue `pages` as AWS pages them: each but the last carries a NextToken."""
    for index, page in enumerate(pages):
        expected = {**SERVICE, "MaxResults": 100}
        if index:
            expected["NextToken"] = f"t{index}"
        answer: dict[str, Any] = {"Quotas": page}
        if index + 1 < len(pages):
            answer["NextToken"] = f"t{index + 1}"
        stubber.add_response(operation, answer, expected)


def demand(training: int, warm_pool: int = 0) -> InstanceDemand:
    return InstanceDemand(G4, training, warm_pool, "this run (--n_workers 4)",
                          "lower --n_workers")


def test_quotas_are_found_by_name_across_pages_empty_ones_included(
        quotas: tuple[Any, Stubber]) -> None:
    session, stubber = quotas
    listing(stubber, [quota("ml.m5.large for training job usage", 8)], [],
            [quota(TRAINING, 4), quota(WARM, 4)])
    check_quotas(session, REGION, [demand(4, 4)])


def test_a_quota_listed_without_applied_value_has_its_default(
        quotas: tuple[Any, Stubber]) -> None:
    """ListServiceQuotas leaves out quotas whose applied value is not available."""
    session, stubber = quotas
    listing(stubber, [quota(TRAINING, 4)])
    listing(stubber, [quota(TRAINING, 2)], [quota(WARM, 0)],
            operation="list_aws_default_service_quotas")
    found = read_quotas(session.client(), {TRAINING, WARM})
    assert {name: q.value for name, q in found.items()} == {TRAINING: 4, WARM: 0}


@pytest.mark.parametrize(
    ("listed", "warm_pool", "short", "value"),
    [
        ([quota(TRAINING, 2)], 0, TRAINING, "2"),
        ([quota(TRAINING, 8), quota(WARM, 0)], 4, WARM, "0"),  # AWS's default warm-pool quota
    ],
)
def test_a_shortfall_names_the_quota_its_value_the_need_and_the_ways_out(
        quotas: tuple[Any, Stubber], listed: list[dict[str, Any]], warm_pool: int, short: str,
        value: str) -> None:
    session, stubber = quotas
    listing(stubber, listed)
    with pytest.raises(UserError) as info:
        check_quotas(session, REGION, [demand(4, warm_pool)])
    message = str(info.value)
    assert "\n" not in message
    assert f"quota '{short}' is {value} in {REGION}, but this run (--n_workers 4) needs 4" \
        in message
    assert "increase --service-code sagemaker --quota-code L-1A2B3C4D --desired-value 4" \
        in message
    assert "--no_quota_check" in message
    assert ("without --warm_pool" in message) == bool(warm_pool)


def test_without_warm_pools_only_the_training_quota_is_read(
        quotas: tuple[Any, Stubber]) -> None:
    """A warm-pool quota of 0 is no obstacle to a run that keeps no pools."""
    session, stubber = quotas
    listing(stubber, [quota(TRAINING, 4)])  # the listing stops here: nothing else is asked
    check_quotas(session, REGION, [demand(4)])


def test_no_permission_to_read_quotas_is_a_one_line_warning(
        quotas: tuple[Any, Stubber], caplog: pytest.LogCaptureFixture) -> None:
    session, stubber = quotas
    stubber.add_client_error("list_service_quotas", "AccessDeniedException", http_status_code=400)
    with caplog.at_level(logging.WARNING):
        check_quotas(session, REGION, [demand(4, 4)])
    [warning] = caplog.messages
    assert "\n" not in warning and "servicequotas:ListServiceQuotas" in warning


def test_an_unlisted_quota_is_a_warning_not_a_stop(
        quotas: tuple[Any, Stubber], caplog: pytest.LogCaptureFixture) -> None:
    session, stubber = quotas
    listing(stubber, [quota(TRAINING, 4)])
    listing(stubber, [], operation="list_aws_default_service_quotas")
    with caplog.at_level(logging.WARNING):
        check_quotas(session, REGION, [demand(4, 4)])
    [warning] = caplog.messages
    assert f"lists no quota '{WARM}'" in warning


def test_unreachable_service_quotas_is_a_one_line_warning(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SERVICE_QUOTAS", "http://127.0.0.1:9")  # nothing there
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name=REGION)
    with caplog.at_level(logging.WARNING):
        check_quotas(session, REGION, [demand(4, 4)])
    [warning] = caplog.messages
    assert "\n" not in warning and f"Service Quotas in {REGION} did not answer" in warning
