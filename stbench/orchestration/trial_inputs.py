"""What a trial gets besides its config: the user benchmark's folder and the input channels.

Container trials (docker, sagemaker) get them as job input channels: `code` (the packed
folder of a user benchmark; built-in ones are in the image) and one channel per input. Local
process trials run the script where it is and find local inputs in SM_CHANNEL_<NAME>.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from stbench.model.benchmark import BACKENDS, Benchmark
from stbench.model.code_package import (
    CODE_CHANNEL,
    CodePackage,
    is_user_benchmark,
    pack_benchmark,
)
from stbench.model.inputs import channel_sources, is_s3
from stbench.model.spec import ExperimentSpec

CONTAINER_BACKENDS = ("docker", "sagemaker")


@dataclass(frozen=True)
class TrialInputs:
    benchmark: str  # the `stbench_benchmark` hyperparameter: a built-in name or the YAML's file
    channels: dict[str, str] = field(default_factory=dict)  # name -> s3:// or file:// URI


def check_trial_inputs(spec: ExperimentSpec, benchmark: Benchmark) -> None:
    """The inputs fit the back-end and a user benchmark's folder can travel (size, links,
    script inside): one-line UserErrors before any job."""
    if spec.backend not in BACKENDS:  # simulated trials run no script
        return
    channel_sources(benchmark.inputs, spec.inputs, spec.backend)
    if spec.backend in CONTAINER_BACKENDS and is_user_benchmark(benchmark):
        pack_benchmark(benchmark)


def local_environment(spec: ExperimentSpec, benchmark: Benchmark) -> dict[str, str]:
    """SM_CHANNEL_<NAME> for local process trials, as AWS's training toolkit names them."""
    sources = channel_sources(benchmark.inputs, spec.inputs, "local")
    return {f"SM_CHANNEL_{name.upper()}": source for name, source in sources.items()}


def trial_inputs(spec: ExperimentSpec, benchmark: Benchmark,
                 publish: Callable[[CodePackage], str]) -> TrialInputs:
    """Channels for the trial jobs of one experiment; a user benchmark's folder is packed and
    handed to `publish`, which stores it where the jobs read it and returns its URI (the
    factory passes `code_upload.publish_code` for the study's root)."""
    sources = channel_sources(benchmark.inputs, spec.inputs, spec.backend)
    channels = {name: source if is_s3(source) else f"file://{source}"
                for name, source in sources.items()}
    if not is_user_benchmark(benchmark):
        return TrialInputs(benchmark.name, channels)
    package = pack_benchmark(benchmark)
    channels[CODE_CHANNEL] = publish(package)
    return TrialInputs(package.benchmark_file, channels)
