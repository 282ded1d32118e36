"""The README's "record once, compare many" recipe: its first step, a real study on
SageMaker, runs as written (moto stands in for AWS; the README's placeholders become moto's
role, bucket and pushed images)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from test_sagemaker_checks import (  # noqa: F401 - fixtures
    IMAGE,
    MANIFEST,
    REGION,
    ROLE,
    S3_ROOT,
    aws,
    fast_polls,
)

README = Path(__file__).resolve().parents[2] / "README.md"
PLACEHOLDERS = {"ROLE_ARN": ROLE, "s3://bucket/prefix": S3_ROOT, "TRAINER_URI": IMAGE}
pytestmark = pytest.mark.usefixtures("isolated_aws_env")


def record_step() -> list[str]:
    """The recipe's `stbench run --backend sagemaker ...` command, as a list of words."""
    section = README.read_text().split("## Record once, compare many", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block is not None
    commands = block[1].replace("\\\n", " ").splitlines()
    [command] = [c for c in commands if c.startswith("stbench run --backend sagemaker")]
    return [PLACEHOLDERS.get(word, word) for word in shlex.split(command, comments=True)]


@pytest.mark.usefixtures("fast_polls")
def test_the_readmes_record_step_runs_as_written(aws: dict[str, Any], tmp_path: Path,  # noqa: F811
                                                 capsys: pytest.CaptureFixture) -> None:
    from stbench.cli.main import main

    ecr = aws["session"].client("ecr")  # `make build GPU=1 && make push` pushed it
    ecr.create_repository(repositoryName="stbench-trainer-gpu")
    ecr.put_image(repositoryName="stbench-trainer-gpu", imageManifest=json.dumps(MANIFEST),
                  imageTag="v1")
    # one experiment, briefly (moto's jobs end at once without reports); no quotas in moto
    brief = ["--method", "RS", "--num_seeds", "1", "--n_workers", "1", "--max_failures", "1",
             "--max_wallclock_time", "5", "--region", REGION, "--no_quota_check",
             "--results_root", str(tmp_path)]
    main(record_step()[1:] + brief)
    err = capsys.readouterr().err
    assert "stbench: error" not in err, err
    sm = aws["session"].client("sagemaker")
    [summary, *_] = sm.list_training_jobs()["TrainingJobSummaries"]
    job = sm.describe_training_job(TrainingJobName=summary["TrainingJobName"])
    assert job["AlgorithmSpecification"]["TrainingImage"] == IMAGE.replace(
        "stbench-trainer:", "stbench-trainer-gpu:")
    assert (tmp_path / "cifar-real" / "resnet_cifar10" / "RS" / "0" / "metadata.json").is_file()
