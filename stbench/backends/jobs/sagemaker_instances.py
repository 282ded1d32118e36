"""The instances a SageMaker run asks for, checked before any job is created.

Two things fail late or silently otherwise: an instance type that CreateTrainingJob refuses
(`ml.c5.large`: the first trial's job raises a ValidationException, inside an orchestrator),
and too small an account quota (AWS's default warm-pool quota is 0, and then a job with
KeepAlivePeriodInSeconds keeps no pool: every trial cold-starts and nobody is told). The valid
types come from botocore's service model, not from our price table, which only prices them.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from stbench.backends.aws import DENIED, error_code, one_line
from stbench.model.errors import UserError
from stbench.model.prices import PRICES_ENV, load_prices

logger = logging.getLogger(__name__)

PREFIX = "ml."
SUGGESTIONS = 3
SERVICE_CODE = "sagemaker"
TRAINING_QUOTA = "{} for training job usage"
WARM_POOL_QUOTA = "{} for training warm pool usage"
SKIP_FLAG = "--no_quota_check"
# The quota check is advisory when Service Quotas cannot answer: it must not hold a run long.
QUOTA_CLIENT = Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2})


@cache
def training_instance_types() -> tuple[str, ...]:
    """What CreateTrainingJob accepts as ResourceConfig.InstanceType (the installed botocore's
    TrainingInstanceType enum)."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    request = model.operation_model("CreateTrainingJob").input_shape
    return tuple(request.members["ResourceConfig"].members["InstanceType"].enum)


def close_instance_types(name: str, valid: Iterable[str], n: int = SUGGESTIONS) -> list[str]:
    """The `n` valid types closest to `name`; a missing `ml.` prefix (the EC2 habit) and
    upper case are forgiven first."""
    query = name.strip().lower()
    if not query.startswith(PREFIX):
        query = PREFIX + query
    return difflib.get_close_matches(query, list(valid), n=n, cutoff=0)


def check_instance_type(instance_type: str) -> None:
    """One line with close valid types for a type SageMaker does not train on; only a warning
    for a valid type the price table cannot price (its cost then stays unknown)."""
    valid = training_instance_types()
    if instance_type not in valid:
        close = close_instance_types(instance_type, valid)
        raise UserError(
            f"'{instance_type}' is not a SageMaker training instance type: pass "
            f"--instance_type with one CreateTrainingJob accepts, e.g. {', '.join(close)}"
        )
    if instance_type not in load_prices():
        logger.warning("no price for %s in the price table: its trials' cost stays empty; add "
                       "it to a prices YAML named by %s", instance_type, PRICES_ENV)


@dataclass(frozen=True)
class InstanceDemand:
    """Instances of one type a run may hold at once: running training jobs, and (with
    --warm_pool) retained warm pools. For messages: `who` names the run, `fewer` says how
    it would need fewer instances."""

    instance_type: str
    training: int
    warm_pool: int
    who: str
    fewer: str

    def quotas(self) -> list[tuple[str, int]]:
        """(quota name, instances needed); no warm-pool quota is needed without warm pools."""
        needs = [(TRAINING_QUOTA.format(self.instance_type), self.training)]
        if self.warm_pool:
            needs.append((WARM_POOL_QUOTA.format(self.instance_type), self.warm_pool))
        return needs


@dataclass(frozen=True)
class Quota:
    name: str
    code: str
    value: float


def check_quotas(session: Any, region: str, demands: Iterable[InstanceDemand]) -> None:
    """Raise ``UserError`` (one line) for the first SageMaker quota below what the run needs.

    A quota Service Quotas will not show (no permission, unreachable, not listed) is only a
    warning: the quotas are the account's business, the run may still fit."""
    demands = list(demands)
    names = {name for demand in demands for name, _ in demand.quotas()}
    if not names:
        return
    client = session.client("service-quotas", region_name=region, config=QUOTA_CLIENT)
    try:
        quotas = read_quotas(client, names)
    except (ClientError, BotoCoreError) as err:
        if isinstance(err, ClientError) and error_code(err) in DENIED:
            logger.warning("not checking SageMaker quotas: no permission to read them (%s); "
                           "grant servicequotas:ListServiceQuotas and "
                           "servicequotas:ListAWSDefaultServiceQuotas (docs/iam.md)",
                           error_code(err))
        else:
            reason = error_code(err) if isinstance(err, ClientError) else one_line(err)
            logger.warning("not checking SageMaker quotas: Service Quotas in %s did not answer "
                           "(%s)", region, reason)
        return
    for demand in demands:
        for name, needed in demand.quotas():
            quota = quotas.get(name)
            if quota is None:
                logger.warning("Service Quotas in %s lists no quota '%s': not checking it",
                               region, name)
            elif quota.value < needed:
                raise UserError(_shortfall(quota, needed, demand, region))


def read_quotas(client: Any, names: set[str]) -> dict[str, Quota]:
    """The named SageMaker quotas' applied values. ListServiceQuotas leaves out a quota whose
    applied value is not available; its default value (ListAWSDefaultServiceQuotas) holds."""
    found = _find_quotas(client, "list_service_quotas", names)
    missing = names - set(found)
    if missing:
        found.update(_find_quotas(client, "list_aws_default_service_quotas", missing))
    return found


def _find_quotas(client: Any, operation: str, names: set[str]) -> dict[str, Quota]:
    found: dict[str, Quota] = {}
    pages = client.get_paginator(operation).paginate(
        ServiceCode=SERVICE_CODE, PaginationConfig={"PageSize": 100})
    for page in pages:  # the paginator follows NextToken, also past empty pages
        for quota in page.get("Quotas", []):
            name = quota.get("QuotaName")
            if name in names and quota.get("Value") is not None:
                found[name] = Quota(name, str(quota.get("QuotaCode", "")), float(quota["Value"]))
        if len(found) == len(names):
            break
    return found


def _shortfall(quota: Quota, needed: int, demand: InstanceDemand, region: str) -> str:
    warm = quota.name == WARM_POOL_QUOTA.format(demand.instance_type)
    effect = " (pools beyond it are not kept, silently: their trials cold-start)" if warm else ""
    code = f" --quota-code {quota.code}" if quota.code else ""
    request = (f"aws service-quotas request-service-quota-increase --service-code "
               f"{SERVICE_CODE}{code} --desired-value {needed} --region {region}")
    instead = "run without --warm_pool" if warm else demand.fewer
    return (f"SageMaker quota '{quota.name}' is {quota.value:g} in {region}, but {demand.who} "
            f"needs {needed}{effect}: raise it (`{request}` or the Service Quotas console), "
            f"{instead}, or pass {SKIP_FLAG} to skip this check")
