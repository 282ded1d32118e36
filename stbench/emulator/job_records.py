"""Training jobs and warm pools as the endpoint records them, and how the API shows them.

Pure data: the lifecycle (lifecycle.py) and the actions (service.py) change these records
under the service's lock. Times are epoch seconds; the JSON protocol sends them as numbers.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

from stbench.backends.jobs.local_instances import match_key
from stbench.model.job_statuses import IN_PROGRESS, TERMINAL, WARM_IN_USE

DEFAULT_MAX_RUNTIME = 86400  # CreateTrainingJob's default StoppingCondition
ACCOUNT_ID = "123456789012"  # moto's default account: every key pair maps to it
# Request fields echoed by DescribeTrainingJob as sent.
ECHOED = ("HyperParameters", "AlgorithmSpecification", "RoleArn", "InputDataConfig",
          "OutputDataConfig", "ResourceConfig", "VpcConfig", "StoppingCondition",
          "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption",
          "EnableManagedSpotTraining", "CheckpointConfig", "Environment", "RetryStrategy",
          "DebugHookConfig", "ExperimentConfig", "TensorBoardOutputConfig")


@dataclass
class WarmPool:
    """Instances kept after a job, with their `/opt/ml/sagemaker/warmpoolcache` volume."""

    key: str  # the matching fields (AWS's warm-pool matching rules)
    instance_type: str
    instance_count: int
    volume: str
    owner: str  # the job running on it (InUse) or whose pool it is (Available)
    region: str
    expires_at: float | None = None  # set while Available


@dataclass
class TrainingJob:
    name: str
    region: str
    request: dict[str, Any]
    created: float = field(default_factory=time.time)
    status: str = IN_PROGRESS
    secondary: str = "Starting"
    modified: float = 0.0
    transitions: list[dict[str, Any]] = field(default_factory=list)
    started: float | None = None  # TrainingStartTime: the instance is ready
    ended: float | None = None
    failure_reason: str | None = None
    stop_reason: str | None = None  # Stopped or MaxRuntimeExceeded, once a stop is asked
    keep_alive: int = 0  # ResourceConfig.KeepAlivePeriodInSeconds, changed by UpdateTrainingJob
    pool: WarmPool | None = None  # the pool it runs on or left behind
    pool_status: str | None = None
    pool_ended: float | None = None  # when its pool was reused or terminated
    reused_by: str | None = None
    instance_lost: bool = False  # its instance failed (Emulator.fail_instance): an internal error
    retries: int = 0  # restarts after internal errors so far (RetryStrategy)

    def __post_init__(self) -> None:
        self.modified = self.created
        self.keep_alive = int(self.resources.get("KeepAlivePeriodInSeconds", 0))
        self.transitions.append({"Status": self.secondary, "StartTime": self.created,
                                 "StatusMessage": "Launching requested ML instances"})

    @property
    def arn(self) -> str:
        return f"arn:aws:sagemaker:{self.region}:{ACCOUNT_ID}:training-job/{self.name}"

    @property
    def resources(self) -> dict[str, Any]:
        return self.request.get("ResourceConfig") or {}

    @property
    def instance_type(self) -> str:
        return str(self.resources.get("InstanceType", ""))

    @property
    def instance_count(self) -> int:
        return int(self.resources.get("InstanceCount", 1))

    @property
    def max_runtime(self) -> float:
        stopping = self.request.get("StoppingCondition") or {}
        return float(stopping.get("MaxRuntimeInSeconds", DEFAULT_MAX_RUNTIME))

    @property
    def max_retries(self) -> int:
        """RetryStrategy.MaximumRetryAttempts: restarts allowed after internal errors."""
        return int((self.request.get("RetryStrategy") or {}).get("MaximumRetryAttempts", 0))

    @property
    def match_key(self) -> str:
        """AWS's warm-pool matching fields, with the documented defaults filled in."""
        request = {"EnableNetworkIsolation": False,
                   "EnableInterContainerTrafficEncryption": False, **self.request}
        return f"{self.region} {match_key(request)}"

    @property
    def engine_name(self) -> str:
        """Names its container and cache volume: a job name is unique only within its
        region, and one engine runs the jobs of every region."""
        return f"{self.region}-{self.name}"

    @property
    def model_uri(self) -> str:
        output = self.request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        return f"{output}/{self.name}/output/model.tar.gz"

    def advance(self, secondary: str, message: str, status: str | None = None) -> None:
        """A new (secondary) status: LastModifiedTime moves with it, and only with it."""
        now = time.time()
        if self.transitions:
            self.transitions[-1].setdefault("EndTime", now)
        self.transitions.append({"Status": secondary, "StartTime": now,
                                 "StatusMessage": message})
        self.secondary = secondary
        self.status = status or self.status
        self.modified = now
        if self.status in TERMINAL:
            self.transitions[-1]["EndTime"] = now

    def billable_seconds(self) -> int:
        if self.ended is None or self.started is None:
            return 0
        return max(1, math.ceil(self.ended - self.started))

    def warm_pool_status(self, now: float) -> dict[str, Any] | None:
        if self.pool_status is None:
            return None
        status: dict[str, Any] = {"Status": self.pool_status}
        if self.pool_status != WARM_IN_USE and self.ended is not None:
            until = self.pool_ended if self.pool_ended is not None else now
            status["ResourceRetainedBillableTimeInSeconds"] = max(0, int(until - self.ended))
        if self.reused_by:
            status["ReusedByJob"] = self.reused_by
        return status

    def summary(self, now: float) -> dict[str, Any]:
        """A `TrainingJobSummary` of ListTrainingJobs."""
        summary: dict[str, Any] = {
            "TrainingJobName": self.name, "TrainingJobArn": self.arn,
            "CreationTime": self.created, "LastModifiedTime": self.modified,
            "TrainingJobStatus": self.status, "SecondaryStatus": self.secondary,
        }
        if self.ended is not None:
            summary["TrainingEndTime"] = self.ended
        pool = self.warm_pool_status(now)
        if pool is not None:
            summary["WarmPoolStatus"] = pool
        return summary

    def describe(self, now: float) -> dict[str, Any]:
        """DescribeTrainingJob's answer."""
        description = {key: json.loads(json.dumps(self.request[key]))
                       for key in ECHOED if key in self.request}
        description.setdefault("StoppingCondition", {"MaxRuntimeInSeconds": DEFAULT_MAX_RUNTIME})
        description["ResourceConfig"] = {**self.resources,
                                         "KeepAlivePeriodInSeconds": self.keep_alive}
        description.update(self.summary(now))
        description["SecondaryStatusTransitions"] = [dict(t) for t in self.transitions]
        # botocore's model requires S3ModelArtifacts in every answer (the SDK 3.x refuses
        # one without it); AWS does not say what it holds before the upload: the location
        description["ModelArtifacts"] = {"S3ModelArtifacts": self.model_uri}
        if self.started is not None:
            description["TrainingStartTime"] = self.started
        if self.failure_reason:
            description["FailureReason"] = self.failure_reason
        if self.ended is not None:
            description["BillableTimeInSeconds"] = self.billable_seconds()
            description["TrainingTimeInSeconds"] = self.billable_seconds()
        return description
