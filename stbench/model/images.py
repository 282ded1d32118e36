"""Image names by role and variant: `make build` and `make push` name every image
`stbench-<role>[-gpu]` with one shared tag, so one trainer URI names its siblings."""

from __future__ import annotations

import re

from stbench.model.errors import UserError

LOCAL_TRAINER = {"cpu": "stbench-trainer:latest", "gpu": "stbench-trainer-gpu:latest"}
_TRAINER = re.compile(r"^(?P<head>(?:.*/)?)stbench-trainer(?:-gpu)?(?P<tail>(?:[:@].*)?)$")


def trainer_image_for(trainer: str, variant: str) -> str:
    """The trainer image of the benchmark's variant beside the given one; a custom image
    (not named stbench-trainer) is used as it is."""
    match = _TRAINER.match(trainer)
    if match is None:
        return trainer
    suffix = "-gpu" if variant == "gpu" else ""
    return f"{match['head']}stbench-trainer{suffix}{match['tail']}"


def orchestrator_image_for(trainer: str) -> str:
    """The orchestrator image pushed beside a trainer image (same registry and tag)."""
    match = _TRAINER.match(trainer)
    if match is None:
        raise UserError(
            f"cannot derive the orchestrator image from --image {trainer}; "
            "pass --orchestrator_image"
        )
    return f"{match['head']}stbench-orchestrator{match['tail']}"
