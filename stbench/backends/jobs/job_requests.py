"""Build `CreateTrainingJob` requests for trials: one pure function, shared by every adapter."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

import botocore.session
from syne_tune.config_space import Categorical, Float, Integer

from stbench.model.benchmark import Benchmark
from stbench.model.container_contract import BENCHMARK_KEY, metric_regex
from stbench.model.errors import UserError

LOCAL_ROLE = "arn:aws:iam::000000000000:role/stbench-local"
# botocore's MetricName and MetricRegex length limits (shapes of AlgorithmSpecification)
MAX_METRIC_NAME, MAX_METRIC_REGEX = 255, 500


@dataclass(frozen=True)
class JobTemplate:
    """What every trial job of one experiment shares."""

    image: str
    benchmark: str
    instance_type: str
    checkpoint_root: str  # s3://bucket/prefix/ or file:///path/ ; the trial id is appended
    output_root: str
    role_arn: str = LOCAL_ROLE
    instance_count: int = 1
    volume_gb: int = 30
    keep_alive_seconds: int = 0
    max_runtime_seconds: int = 24 * 3600
    environment: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: tuple[str, ...] = ()  # reported metrics the SageMaker console should plot
    inputs: dict[str, str] = field(default_factory=dict)  # channel -> s3:// (file:// locally)


@functools.cache
def hyperparameter_limits() -> tuple[int, int, str]:
    """(most entries, longest value, value pattern) CreateTrainingJob takes in
    HyperParameters: botocore's model of the API, which AWS's own limits come with."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.shape_for("HyperParameters")
    value = shape.value.metadata
    return int(shape.metadata["max"]), int(value["max"]), str(value["pattern"])


def check_hyperparameters(values: dict[str, str], fix: str) -> None:
    """A job's hyperparameters within SageMaker's limits (the local adapter keeps them too),
    or a UserError saying which one is over and `fix`."""
    most, longest, pattern = hyperparameter_limits()
    if len(values) > most:
        raise UserError(f"a job would get {len(values)} hyperparameters; SageMaker allows at "
                        f"most {most}: {fix}")
    for key, value in values.items():
        if len(value) > longest:
            raise UserError(f"hyperparameter '{key}' can be {len(value)} characters long; "
                            f"SageMaker allows at most {longest}: {fix}")
        if not re.fullmatch(pattern, value):  # '.*': no line breaks (AWS rejects them)
            found = " (it has a line break)" if "\n" in value or "\r" in value else ""
            raise UserError(f"hyperparameter '{key}' does not match SageMaker's pattern "
                            f"'{pattern}'{found}: remove it, or pass such text through an "
                            "input channel (inputs:)")


TRIAL_FIX = ("give the benchmark fewer config_space entries (fixed ones are hyperparameters "
             "too) or shorter values; pass long data through an input channel (inputs:)")


def hyperparameters(benchmark: str, config: dict[str, Any]) -> dict[str, str]:
    """SageMaker hyperparameters: string values only, within SageMaker's limits."""
    values = {BENCHMARK_KEY: benchmark}
    for key, value in config.items():
        values[key] = value if isinstance(value, str) else json.dumps(value)
    check_hyperparameters(values, TRIAL_FIX)
    return values


def check_trial_hyperparameters(benchmark: Benchmark) -> None:
    """Before any job: the benchmark's trials fit SageMaker's hyperparameter limits, checked
    on the widest config it can draw (each choice at its longest value)."""
    widest = {}
    for key, entry in benchmark.config_space.items():
        if isinstance(entry, Categorical):
            entry = max(entry.categories, key=lambda value: len(str(value)))
        widest[key] = entry.upper if isinstance(entry, (Float, Integer)) else entry
    hyperparameters(benchmark.name, widest)


def trial_request(template: JobTemplate, name: str, trial_id: int,
                  config: dict[str, Any]) -> dict[str, Any]:
    """A trial's job: its config as hyperparameters, its own checkpoint prefix."""
    checkpoint = f"{template.checkpoint_root.rstrip('/')}/{trial_id}/"
    return training_job_request(template, name, hyperparameters(template.benchmark, config),
                                checkpoint, {"stbench:trial-id": str(trial_id)})


def input_data_config(inputs: dict[str, str]) -> list[dict[str, Any]]:
    """One File-mode channel per input: SageMaker copies everything under the URI (a key
    prefix) into `/opt/ml/input/data/<channel>/` before the job's container starts."""
    return [{"ChannelName": name, "InputMode": "File",
             "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri,
                                             "S3DataDistributionType": "FullyReplicated"}}}
            for name, uri in inputs.items()]


def metric_definitions(metrics: tuple[str, ...]) -> list[dict[str, str]]:
    """`AlgorithmSpecification.MetricDefinitions`: SageMaker reads each metric from the job's
    `[tune-metric]` lines, so the console plots its curve. A name past the API's limits is left
    out: the trial still reports it, only the console has no plot."""
    definitions = [{"Name": name, "Regex": metric_regex(name)} for name in metrics]
    return [d for d in definitions
            if len(d["Name"]) <= MAX_METRIC_NAME and len(d["Regex"]) <= MAX_METRIC_REGEX]


def training_job_request(template: JobTemplate, name: str, hyperparameters: dict[str, str],
                         checkpoint_uri: str, tags: dict[str, str]) -> dict[str, Any]:
    """The `CreateTrainingJob` request every stbench job (trial or orchestrator) sends."""
    resource: dict[str, Any] = {
        "InstanceType": template.instance_type,
        "InstanceCount": template.instance_count,
        "VolumeSizeInGB": template.volume_gb,
    }
    if template.keep_alive_seconds > 0:
        resource["KeepAlivePeriodInSeconds"] = template.keep_alive_seconds
    algorithm: dict[str, Any] = {"TrainingImage": template.image, "TrainingInputMode": "File"}
    if template.metrics:
        algorithm["MetricDefinitions"] = metric_definitions(template.metrics)
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": algorithm,
        "RoleArn": template.role_arn,
        "HyperParameters": hyperparameters,
        "Environment": dict(template.environment),
        **({"InputDataConfig": input_data_config(template.inputs)} if template.inputs else {}),
        "ResourceConfig": resource,
        "StoppingCondition": {"MaxRuntimeInSeconds": template.max_runtime_seconds},
        "CheckpointConfig": {"S3Uri": checkpoint_uri, "LocalPath": "/opt/ml/checkpoints"},
        "OutputDataConfig": {"S3OutputPath": template.output_root},
        "Tags": [{"Key": k, "Value": v} for k, v in {**template.tags, **tags}.items()],
    }
