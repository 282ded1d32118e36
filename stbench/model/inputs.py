"""Input channels of a benchmark: data that reaches each trial as `/opt/ml/input/data/<name>`.

A benchmark YAML names them (`inputs: {train: s3://bucket/data/}`), and `stbench run --inputs
NAME=SOURCE ...` adds or replaces them. A source is an s3:// URI (SageMaker, launch, and
docker, which downloads it) or a local folder or file (docker copies it into each trial's
channel; local process trials get its path in SM_CHANNEL_<NAME>). Pure: no AWS or Docker.
"""

from __future__ import annotations

import re
from pathlib import Path

from stbench.model.backend_names import LOCAL, SAGEMAKER
from stbench.model.code_package import CODE_CHANNEL
from stbench.model.errors import UserError

CHANNEL_NAME = re.compile(r"[A-Za-z0-9.\-_]{1,64}")  # CreateTrainingJob's Channel.ChannelName


def check_channel_name(name: str) -> None:
    if not CHANNEL_NAME.fullmatch(name):
        raise UserError(f"input channel name '{name}' must be 1-64 letters, digits, '.', '-' "
                        "or '_' (SageMaker's ChannelName)")
    if name == CODE_CHANNEL:
        raise UserError(f"input channel '{CODE_CHANNEL}' is stbench's own (the benchmark's "
                        "folder): choose another name")


def is_s3(source: str) -> bool:
    return source.startswith("s3://")


def resolve_source(source: str, base: Path) -> str:
    """s3:// URIs as given, local paths made absolute against `base`."""
    if is_s3(source):
        if len(source) <= len("s3://") or source[len("s3://")] == "/":
            raise UserError(f"input {source} is not s3://bucket/key-prefix")
        return source
    if "://" in source:
        raise UserError(f"input {source}: give an s3:// URI or a local path")
    return str((base / Path(source).expanduser()).resolve())


def parse_input_flags(values: tuple[str, ...]) -> dict[str, str]:
    """`--inputs NAME=SOURCE ...` as a mapping; local paths against the working folder."""
    inputs = {}
    for value in values:
        name, sep, source = value.partition("=")
        if not sep or not source:
            raise UserError(f"--inputs {value!r}: write NAME=SOURCE, e.g. "
                            "dataset=s3://bucket/cifar-10-python.tar.gz")
        check_channel_name(name)
        inputs[name] = resolve_source(source, Path.cwd())
    return inputs


def channel_sources(benchmark_inputs: dict[str, str], flags: tuple[str, ...],
                    backend: str) -> dict[str, str]:
    """The benchmark's inputs with the flags' on top, checked for `backend`."""
    inputs = {**benchmark_inputs, **parse_input_flags(flags)}
    for name, source in inputs.items():
        if is_s3(source):
            if backend == LOCAL:
                raise UserError(f"input '{name}' is on S3 ({source}): local process trials "
                                "read local folders; use --backend docker or sagemaker, or "
                                f"--inputs {name}=<local folder>")
            continue
        if backend == SAGEMAKER:
            raise UserError(f"input '{name}' is the local path {source}: SageMaker trials "
                            f"read S3; upload it (aws s3 sync) and pass --inputs "
                            f"{name}=s3://<bucket>/<prefix>")
        if not Path(source).exists():
            raise UserError(f"input '{name}': no file or folder at {source}")
    return inputs
