"""Service Quotas for ServiceCode `sagemaker`: the two quotas per training instance type
that the endpoint enforces, in the shapes of botocore's `service-quotas` model.

Other service codes are left to moto. Every training instance type of the SageMaker model
(`TrainingInstanceType`) has `<type> for training job usage` and `<type> for training warm
pool usage`; ListServiceQuotas lists them all with their applied values (the configured
ones, else the defaults), ListAWSDefaultServiceQuotas with the defaults.
"""

from __future__ import annotations

from typing import Any

from stbench.emulator.config import (
    DEFAULT_TRAINING_QUOTA,
    DEFAULT_WARM_POOL_QUOTA,
    TRAINING_USAGE,
    WARM_POOL_USAGE,
    EmulatorConfig,
    quota_code,
)
from stbench.emulator.job_records import ACCOUNT_ID
from stbench.emulator.protocol import AwsError
from stbench.emulator.validation import check_request, enum_of

SERVICE_CODE = "sagemaker"
ACTIONS = ("ListServiceQuotas", "GetServiceQuota", "ListAWSDefaultServiceQuotas",
           "GetAWSDefaultServiceQuota")
PAGE_SIZE = 100


def is_ours(action: str, body: dict[str, Any]) -> bool:
    return action in ACTIONS and body.get("ServiceCode") == SERVICE_CODE


def handle(config: EmulatorConfig, action: str, region: str,
           body: dict[str, Any]) -> dict[str, Any]:
    check_request("service-quotas", action, body)
    applied = action in ("ListServiceQuotas", "GetServiceQuota")
    quotas = _quotas(config, region, applied)
    if action.startswith("Get"):
        found = [q for q in quotas if q["QuotaCode"] == body["QuotaCode"]]
        if not found:
            raise AwsError("NoSuchResourceException",
                           f"The request failed because the specified quota "
                           f"{body['QuotaCode']} does not exist for service {SERVICE_CODE}.")
        return {"Quota": found[0]}
    if body.get("QuotaCode"):
        quotas = [q for q in quotas if q["QuotaCode"] == body["QuotaCode"]]
    try:
        start = int(body.get("NextToken") or 0)
    except ValueError:
        raise AwsError("InvalidPaginationTokenException", "Invalid NextToken") from None
    end = start + int(body.get("MaxResults") or PAGE_SIZE)
    answer: dict[str, Any] = {"Quotas": quotas[start:end]}
    if end < len(quotas):
        answer["NextToken"] = str(end)
    return answer


def _quotas(config: EmulatorConfig, region: str, applied: bool) -> list[dict[str, Any]]:
    out = []
    for instance_type in enum_of("sagemaker", "TrainingInstanceType"):
        for usage, default in ((TRAINING_USAGE, DEFAULT_TRAINING_QUOTA),
                               (WARM_POOL_USAGE, DEFAULT_WARM_POOL_QUOTA)):
            name = f"{instance_type} {usage}"
            code = quota_code(name)
            out.append({
                "ServiceCode": SERVICE_CODE, "ServiceName": "Amazon SageMaker",
                "QuotaArn": f"arn:aws:servicequotas:{region}:{ACCOUNT_ID}:{SERVICE_CODE}/{code}",
                "QuotaCode": code, "QuotaName": name,
                "Value": config.quota(instance_type, usage) if applied else default,
                "Unit": "None", "Adjustable": True, "GlobalQuota": False,
                "QuotaAppliedAtLevel": "ACCOUNT",
            })
    return out
