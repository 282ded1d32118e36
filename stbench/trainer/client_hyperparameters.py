"""Hyperparameters as the SageMaker clients people use write them, read back as stbench's.

SageMaker passes every hyperparameter as a string, but clients encode values differently:
stbench and the SageMaker Python SDK 3.x (`ModelTrainer`) send strings as they are and other
values as JSON (`"relu"` → `relu`, `3` → `3`, `True` → `true`); the SDK 2.x framework
estimators JSON-encode every value, so a string arrives quoted (`"relu"` → `"\\"relu\\""`),
and add settings of their own named `sagemaker_*` (`sagemaker_program`,
`sagemaker_submit_directory`, `sagemaker_region`, ...). A value that is a JSON string literal
is therefore read as that string, and `sagemaker_*` entries are not the benchmark's; the
benchmark's config space then types each value (`stbench.model.benchmark`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from stbench.trainer.toolkit_env import SDK_PREFIX


@dataclass(frozen=True)
class ClientHyperparameters:
    """A job's hyperparameters split into the benchmark's values and the SDK's settings."""

    values: dict[str, str]
    sdk_settings: list[str] = field(default_factory=list)


def unquote(raw: str) -> str:
    """`"abc"` (a JSON string literal, as SDK 2.x sends a string) → `abc`; others unchanged."""
    if len(raw) < 2 or not (raw.startswith('"') and raw.endswith('"')):
        return raw
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, str) else raw


def from_clients(hyperparameters: dict[str, str]) -> ClientHyperparameters:
    values: dict[str, str] = {}
    sdk: list[str] = []
    for key, raw in hyperparameters.items():
        if key.startswith(SDK_PREFIX):
            sdk.append(key)
        else:
            values[key] = unquote(raw)
    return ClientHyperparameters(values, sdk)
