"""The knobs of the local SageMaker endpoint, and its Service Quotas values.

Pure: no Docker, no moto. The quota names are Service Quotas' own (`<instance type> for
training job usage`, `<instance type> for training warm pool usage`, ServiceCode
`sagemaker`); their defaults are AWS's for a new account as far as the docs say: the
warm-pool quota is 0 for every instance type, so a job's KeepAlivePeriodInSeconds keeps no
pool until a quota is set. The training-job default (20 instances) is ours.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from stbench.model.errors import UserError

TRAINING_USAGE = "for training job usage"
WARM_POOL_USAGE = "for training warm pool usage"
DEFAULT_TRAINING_QUOTA = 20.0
DEFAULT_WARM_POOL_QUOTA = 0.0
QUOTA_NAME = re.compile(rf"^(ml\.[a-z0-9.\-]+) ({TRAINING_USAGE}|{WARM_POOL_USAGE})$")
# What containers and clients use to reach the endpoint: moto accepts any key pair.
TEST_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@dataclass(frozen=True)
class EmulatorConfig:
    """How the endpoint behaves; every duration is in seconds and may be scaled freely."""

    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port, chosen when the server starts
    region: str = "us-east-1"  # for requests that name none, and the printed environment
    cold_start_seconds: float = 3.0  # Starting on a new instance (AWS: minutes)
    warm_start_seconds: float = 0.5  # Starting on a reused warm pool
    log_delay_seconds: float = 1.0  # a log line becomes visible this long after it was written
    throttle_fraction: float = 0.0  # this share of SageMaker and Logs calls is throttled
    # this share of valid CreateTrainingJob calls is refused with ResourceLimitExceeded, as
    # when other jobs of the account hold the quota for a moment
    capacity_refusal_fraction: float = 0.0
    stop_grace_seconds: float = 120.0  # SIGTERM to SIGKILL on StopTrainingJob, as on AWS
    checkpoint_sync_seconds: float = 5.0  # /opt/ml/checkpoints upload period while a job runs
    quotas: dict[str, float] = field(default_factory=dict)  # Service Quotas name -> value
    seed: int | None = None  # the throttling and refusal draws; None: fresh entropy
    work_dir: Path | None = None  # the jobs' /opt/ml folders; None: a temporary folder
    # IAM users' and roles' policies are evaluated on every request and for what SageMaker
    # does as a job's role (iam_gate.py); keys IAM does not know, such as `testing`, are root
    enforce_iam: bool = True

    def __post_init__(self) -> None:
        for name in ("cold_start_seconds", "warm_start_seconds", "log_delay_seconds",
                     "stop_grace_seconds"):
            if getattr(self, name) < 0:
                raise UserError(f"{name} must be >= 0, not {getattr(self, name)}")
        if self.checkpoint_sync_seconds <= 0:
            raise UserError("checkpoint_sync_seconds must be > 0")
        for name in ("throttle_fraction", "capacity_refusal_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UserError(f"{name} must be in [0, 1], not {getattr(self, name)}")
        if not 0 <= self.port < 65536:
            raise UserError(f"port {self.port} is not a TCP port (0 picks a free one)")
        for name, value in self.quotas.items():
            check_quota(name, value)

    def quota(self, instance_type: str, usage: str) -> float:
        """The applied value of `<instance_type> <usage>`."""
        default = DEFAULT_TRAINING_QUOTA if usage == TRAINING_USAGE else DEFAULT_WARM_POOL_QUOTA
        return float(self.quotas.get(f"{instance_type} {usage}", default))


def check_quota(name: str, value: float) -> None:
    if not QUOTA_NAME.match(name):
        raise UserError(f"unknown quota '{name}': name one as '<instance type> {TRAINING_USAGE}'"
                        f" or '<instance type> {WARM_POOL_USAGE}', e.g. "
                        f"'ml.m5.large {WARM_POOL_USAGE}'")
    if value < 0:
        raise UserError(f"quota '{name}' must be >= 0, not {value}")


def parse_quota(text: str) -> tuple[str, float]:
    """`"ml.m5.large for training warm pool usage=4"` as (name, 4.0)."""
    name, sep, raw = text.rpartition("=")
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not sep or value < 0:
        raise UserError(f"--quota '{text}' is not NAME=VALUE with VALUE >= 0, e.g. "
                        f"'ml.m5.large {WARM_POOL_USAGE}=4'")
    check_quota(name.strip(), value)
    return name.strip(), value


def quota_code(name: str) -> str:
    """A stable Service Quotas code per quota name. AWS's real codes (`L-…`) are opaque
    and not derivable; clients should find quotas by QuotaName, as stbench does."""
    return "L-" + hashlib.sha256(name.encode()).hexdigest()[:8].upper()
