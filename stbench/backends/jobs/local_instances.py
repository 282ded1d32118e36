"""The bookkeeping of the local Docker adapter: instances (slots), jobs and their descriptions.

Pure data and functions, kept apart from the Docker calls in local_docker.py and warm_slots.py.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stbench.backends.jobs.checkpoints import CheckpointStore
from stbench.backends.jobs.job_service import JobDescription, JobRequest
from stbench.model.job_statuses import IN_PROGRESS, WARM_IN_USE

MATCH_KEYS = ("InstanceType", "InstanceCount", "VolumeSizeInGB", "VolumeKmsKeyId")
MATCH_REQUEST_KEYS = ("RoleArn", "VpcConfig", "EnableNetworkIsolation",
                      "EnableInterContainerTrafficEncryption")


@dataclass
class Slot:
    """One local 'instance': a running container that hosts one job at a time."""

    container_id: str
    image: str
    key: str
    folder: Path
    volume: str
    job: str | None = None  # the job running now
    last_job: str | None = None  # the job whose warm pool this slot is
    expires_at: float | None = None
    gpu: str | None = None  # the host GPU it was given, on a machine with GPUs


@dataclass
class LocalJob:
    request: JobRequest
    slot: Slot
    store: CheckpointStore
    exec_id: str = ""
    status: str = IN_PROGRESS
    failure_reason: str = ""
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    ended_at: float | None = None
    kill_at: float | None = None
    warm_pool: dict[str, Any] | None = None
    pool_ended_at: float | None = None  # when this job's warm pool was reused or terminated
    reused_from: str | None = None  # the job whose warm slot this one started on
    metrics_offset: int = 0

    @property
    def keep_alive(self) -> int:
        return int(self.request["ResourceConfig"].get("KeepAlivePeriodInSeconds", 0))

    @property
    def max_runtime(self) -> float:
        return float(self.request["StoppingCondition"]["MaxRuntimeInSeconds"])


def describe_job(name: str, job: LocalJob) -> JobDescription:
    """DescribeTrainingJob's answer for a local job, warm-pool status included."""
    end = job.ended_at or time.time()
    description: JobDescription = {
        "TrainingJobName": name,
        "TrainingJobStatus": job.status,
        "CreationTime": job.created_at,
        "TrainingStartTime": job.started_at,
        "TrainingEndTime": job.ended_at,
        "BillableTimeInSeconds": int(end - (job.started_at or end) + 0.999),
        "ResourceConfig": dict(job.request["ResourceConfig"]),
    }
    if job.reused_from:  # local extension; on SageMaker the earlier job's ReusedByJob says it
        description["WarmPoolReusedFrom"] = job.reused_from
    if job.failure_reason:
        description["FailureReason"] = job.failure_reason[:1024]
    if job.warm_pool is not None:
        retained = 0.0
        if job.ended_at and job.warm_pool.get("Status") != WARM_IN_USE:
            until = job.pool_ended_at or min(time.time(), job.ended_at + job.keep_alive)
            retained = until - job.ended_at
        description["WarmPoolStatus"] = {
            **job.warm_pool, "ResourceRetainedBillableTimeInSeconds": int(retained),
        }
    return description


def match_key(request: JobRequest) -> str:
    resource = request["ResourceConfig"]
    parts = {k: resource.get(k) for k in MATCH_KEYS}
    parts.update({k: request.get(k) for k in MATCH_REQUEST_KEYS})
    return json.dumps(parts, sort_keys=True, default=str)
