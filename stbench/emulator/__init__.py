"""A local SageMaker endpoint: the training-job API, CloudWatch Logs, S3, ECR, IAM, STS and
SageMaker's Service Quotas on one URL of 127.0.0.1, jobs as containers on the local Docker
engine. See docs/emulator.md; `stbench emulator` starts one, `Emulator` is the Python API.
"""

from stbench.emulator.config import EmulatorConfig
from stbench.emulator.server import Emulator

__all__ = ["Emulator", "EmulatorConfig"]
