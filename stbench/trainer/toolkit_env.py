"""The `SM_*` environment of AWS's SageMaker training toolkit, for scripts written for it.

SageMaker itself sets no `SM_*` variable. AWS's framework images (PyTorch, TensorFlow,
scikit-learn, ...) run the sagemaker-training toolkit, which derives them from
`/opt/ml/input/config/*.json` before it starts the user's script; a script written for those
images reads `SM_MODEL_DIR`, `SM_CHANNEL_TRAIN` or `SM_HP_EPOCHS`. stbench-trainer sets the
same names with the same encodings, so such a script runs unchanged here:

- hyperparameters are read as the toolkit reads them: each value JSON-decoded when it is
  JSON, else kept as the string; `sagemaker_*` entries (the SDK's own settings) left out;
- a string value is set as it is, any other value as compact JSON with sorted keys
  (`SM_HPS`, `SM_HOSTS`, `SM_CHANNELS` are JSON; `SM_HP_EPOCHS=3`; `SM_HP_ACT=relu`);
- `SM_HP_<NAME>` and `SM_CHANNEL_<NAME>` upper-case the name and keep it otherwise;
- channels are the keys of `inputdataconfig.json`, sorted, at `<root>/input/data/<name>`;
- hosts come from `resourceconfig.json` (absent: one host, `algo-1`, as SageMaker names it).
Paths are under the job's root (`/opt/ml`, or `$STBENCH_OPT_ML` in tests).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from stbench.model.container_contract import hyperparameters_path

SDK_PREFIX = "sagemaker_"  # the SageMaker Python SDK's own hyperparameters (toolkit: params.py)
DEFAULT_HOST = "algo-1"
DEFAULT_INTERFACE = "eth0"  # the toolkit's default when resourceconfig.json names none


def toolkit_value(raw: str) -> Any:
    """How the toolkit reads one hyperparameter: JSON when it parses, else the string."""
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return raw


def encode(value: Any) -> str:
    """The toolkit's encoding of an environment value (`mapping.to_env_vars`)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _read_config(path: Path) -> dict[str, Any]:
    """A config file SageMaker wrote, or {} when it is absent or unreadable: the training
    script, not this environment, decides whether it needs it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def count_gpus() -> int:
    """GPUs this container sees: `CUDA_VISIBLE_DEVICES` when set, else `nvidia-smi`'s list
    (the toolkit's way), else 0."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        listing = subprocess.run(["nvidia-smi", "--list-gpus"], capture_output=True, text=True,
                                 timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in listing.splitlines() if line.startswith("GPU "))


def count_cpus() -> int:
    """CPUs this process may run on (a container's cpuset), as SM_NUM_CPUS reports them."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def toolkit_folders(root: Path) -> list[Path]:
    """Folders a script may write to at once, as on SageMaker: the model, `SM_OUTPUT_DIR`
    (its own failure file) and `SM_OUTPUT_DATA_DIR`."""
    return [root / "model", root / "output" / "data"]


def toolkit_environment(root: Path, hyperparameters: dict[str, str], job_name: str = "",
                        num_gpus: int | None = None, num_cpus: int | None = None
                        ) -> dict[str, str]:
    """The `SM_*` variables for a job whose files are under `root`."""
    config_dir = root / "input" / "config"
    resources = _read_config(config_dir / "resourceconfig.json")
    input_data = _read_config(config_dir / "inputdataconfig.json")
    hps = {key: toolkit_value(raw) for key, raw in hyperparameters.items()
           if not key.startswith(SDK_PREFIX)}
    current_host = str(resources.get("current_host") or DEFAULT_HOST)
    hosts = resources.get("hosts") or [current_host]
    channels = {name: str(root / "input" / "data" / name) for name in sorted(input_data)}
    gpus = count_gpus() if num_gpus is None else num_gpus
    cpus = count_cpus() if num_cpus is None else num_cpus
    user_args = [item for key in sorted(hps) for item in (f"--{key}", encode(hps[key]))]
    values: dict[str, Any] = {
        "hosts": hosts,
        "current_host": current_host,
        "current_instance_type": resources.get("current_instance_type", "local"),
        "network_interface_name": resources.get("network_interface_name", DEFAULT_INTERFACE),
        "hps": hps,
        "resource_config": resources,
        "input_data_config": input_data,
        "channels": list(channels),
        "model_dir": str(root / "model"),
        "input_dir": str(root / "input"),
        "input_config_dir": str(config_dir),
        "output_dir": str(root / "output"),
        "output_data_dir": str(root / "output" / "data"),
        "output_intermediate_dir": str(root / "output" / "intermediate"),
        "num_gpus": gpus,
        "num_cpus": cpus,
        "user_args": user_args,
    }
    training_env = {**{k: v for k, v in values.items() if k not in ("hps", "channels")},
                    "hyperparameters": hps, "channel_input_dirs": channels,
                    "job_name": job_name}
    values["training_env"] = training_env
    values.update({f"channel_{name}": path for name, path in channels.items()})
    values.update({f"hp_{key}": value for key, value in hps.items()})
    return {f"SM_{key.upper()}": encode(value) for key, value in values.items()}


def job_toolkit_environment(root: Path) -> dict[str, str]:
    """The `SM_*` variables of the job under `root` (its hyperparameters file already
    checked by the trainer), for the training script's environment."""
    hyperparameters = _read_config(hyperparameters_path(root))
    return toolkit_environment(root, {k: str(v) for k, v in hyperparameters.items()},
                               os.environ.get("TRAINING_JOB_NAME", ""))
