"""Instances an account holds, against its Service Quotas, and warm-pool matching.

From AWS's warm-pool docs: a pool is retained only if the warm-pool quota for its instance
type has room; "all warm pool instance usage counts toward your SageMaker training resource
limit", so Available pools count as training usage too; a job that takes a pool adds no
usage (the instances move to it). A Stopping job still holds its instances.
"""

from __future__ import annotations

from collections.abc import Iterable

from stbench.emulator.config import TRAINING_USAGE, WARM_POOL_USAGE, EmulatorConfig
from stbench.emulator.job_records import TrainingJob, WarmPool
from stbench.emulator.protocol import AwsError
from stbench.model.job_statuses import IN_PROGRESS, STOPPING


def is_available(pool: WarmPool, now: float) -> bool:
    return pool.expires_at is not None and pool.expires_at > now


def find_pool(pools: Iterable[WarmPool], job: TrainingJob, now: float) -> WarmPool | None:
    """An Available pool whose matching fields equal the job's (the image need not match)."""
    key = job.match_key
    for pool in pools:
        if is_available(pool, now) and pool.key == key:
            return pool
    return None


def check_training_quota(config: EmulatorConfig, jobs: Iterable[TrainingJob],
                         pools: Iterable[WarmPool], job: TrainingJob, takes_pool: bool) -> None:
    """ResourceLimitExceeded, in AWS's words, when `job` would exceed its training quota."""
    kind = job.instance_type
    busy = sum(other.instance_count for other in jobs
               if other.instance_type == kind and other.status in (IN_PROGRESS, STOPPING))
    idle = sum(pool.instance_count for pool in pools
               if pool.instance_type == kind and pool.expires_at is not None)
    delta = 0 if takes_pool else job.instance_count
    quota = config.quota(kind, TRAINING_USAGE)
    if busy + idle + delta > quota:
        raise limit_exceeded(kind, quota, busy + idle, delta)


def limit_exceeded(instance_type: str, quota: float, used: float, delta: float) -> AwsError:
    """ResourceLimitExceeded in AWS's words for `<instance_type> for training job usage`."""
    return AwsError("ResourceLimitExceeded", (
        f"The account-level service limit '{instance_type} {TRAINING_USAGE}' is {quota:g} "
        f"Instances, with current utilization of {used:g} Instances and a request delta of "
        f"{delta:g} Instances. Please use AWS Service Quotas to request an increase for this "
        "quota. If AWS Service Quotas is not available, contact AWS support to request an "
        "increase for this quota."))


def refused_for_others(config: EmulatorConfig, request: dict) -> AwsError:
    """The refusal `capacity_refusal_fraction` draws: the quota is full of other jobs."""
    kind = request["ResourceConfig"]["InstanceType"]
    quota = config.quota(kind, TRAINING_USAGE)
    return limit_exceeded(kind, quota, quota, request["ResourceConfig"]["InstanceCount"])


def warm_pool_has_room(config: EmulatorConfig, pools: Iterable[WarmPool],
                       job: TrainingJob) -> bool:
    """May `job`'s instances stay as a pool? Pools of its type, other than its own, plus its
    instances must fit the warm-pool quota (default 0: never, and no error, as on AWS)."""
    held = sum(pool.instance_count for pool in pools
               if pool.instance_type == job.instance_type and pool is not job.pool)
    return held + job.instance_count <= config.quota(job.instance_type, WARM_POOL_USAGE)
