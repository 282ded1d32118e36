"""One trainer URI names its siblings: the GPU trainer and the orchestrator, same registry
and tag, so `make remote IMAGE=...` launches a study of CPU and GPU benchmarks."""

import pytest

from stbench.model.errors import UserError
from stbench.model.images import orchestrator_image_for, trainer_image_for

ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


@pytest.mark.parametrize("given, variant, expected", [
    (f"{ECR}/stbench-trainer:0.1.0-abc", "gpu", f"{ECR}/stbench-trainer-gpu:0.1.0-abc"),
    (f"{ECR}/stbench-trainer-gpu:v1", "cpu", f"{ECR}/stbench-trainer:v1"),
    (f"{ECR}/stbench-trainer:v1", "cpu", f"{ECR}/stbench-trainer:v1"),
    ("stbench-trainer:latest", "gpu", "stbench-trainer-gpu:latest"),
    ("127.0.0.1:5000/team/stbench-trainer@sha256:" + "a" * 64, "gpu",
     "127.0.0.1:5000/team/stbench-trainer-gpu@sha256:" + "a" * 64),
    ("my-own-image:3", "gpu", "my-own-image:3"),  # a custom image is used as given
])
def test_trainer_image_for_variant(given: str, variant: str, expected: str) -> None:
    assert trainer_image_for(given, variant) == expected


def test_orchestrator_beside_any_trainer_variant() -> None:
    assert orchestrator_image_for(f"{ECR}/stbench-trainer-gpu:v2") == (
        f"{ECR}/stbench-orchestrator:v2")
    assert orchestrator_image_for("stbench-trainer") == "stbench-orchestrator"
    with pytest.raises(UserError, match="--orchestrator_image"):
        orchestrator_image_for(f"{ECR}/my-trainer:v1")
