"""How a training script receives its config: one convention for local processes and trainers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHECKPOINT_ARG = "st_checkpoint_dir"  # Syne Tune's name, so existing scripts find it


def script_arguments(config: dict[str, Any], checkpoint_dir: Path) -> list[str]:
    """`--key=value` pairs: the `=` form keeps negative numbers such as -1e-05 from being
    read as options by argparse, which the separate `--key value` form does not."""
    args = [f"--{key}={value}" for key, value in config.items()]
    return args + [f"--{CHECKPOINT_ARG}={checkpoint_dir}"]
