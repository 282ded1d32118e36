"""What a trial gets besides its config: the user benchmark's folder and the input channels.

Container trials (docker, sagemaker) get them as job input channels: `code` (the packed
folder of a user benchmark; built-in ones are in the image) and one channel per input. Local
process trials run the script where it is and find local inputs in SM_CHANNEL_<NAME>.
Planning reads `--inputs` and packs the folder once per run (`TrialFiles.plan`); every
experiment's back-end takes them from the plan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from stbench.model.backend_names import BACKENDS, CONTAINER_BACKENDS
from stbench.model.benchmark import Benchmark
from stbench.model.code_package import (
    CODE_CHANNEL,
    CodePackage,
    is_user_benchmark,
    pack_benchmark,
)
from stbench.model.inputs import channel_sources, is_s3
from stbench.model.spec import ExperimentSpec


@dataclass(frozen=True)
class TrialInputs:
    benchmark: str  # the `stbench_benchmark` hyperparameter: a built-in name or the YAML's file
    channels: dict[str, str] = field(default_factory=dict)  # name -> s3:// or file:// URI


@dataclass(frozen=True)
class TrialFiles:
    """The run's input channels, checked for its back-end, and a user benchmark's folder
    packed for container trials: computed once, when the run is planned."""

    sources: dict[str, str] = field(default_factory=dict)  # name -> s3:// URI or local path
    code: CodePackage | None = None  # the user benchmark's folder (container trials only)

    @classmethod
    def plan(cls, spec: ExperimentSpec, benchmark: Benchmark) -> TrialFiles:
        """The inputs fit the back-end and a user benchmark's folder can travel (size, links,
        script inside): one-line UserErrors before any job."""
        if spec.backend not in BACKENDS:  # simulated trials run no script
            return cls()
        sources = channel_sources(benchmark.inputs, spec.inputs, spec.backend)
        travels = spec.backend in CONTAINER_BACKENDS and is_user_benchmark(benchmark)
        return cls(sources, pack_benchmark(benchmark) if travels else None)

    def environment(self) -> dict[str, str]:
        """SM_CHANNEL_<NAME> for local process trials, as AWS's training toolkit names them."""
        return {f"SM_CHANNEL_{name.upper()}": source for name, source in self.sources.items()}

    def job_inputs(self, benchmark: Benchmark,
                   publish: Callable[[CodePackage], str]) -> TrialInputs:
        """Channels for the trial jobs of one experiment; a user benchmark's folder is handed
        to `publish`, which stores it where the jobs read it and returns its URI (the factory
        passes `code_upload.publish_code` for the study's root)."""
        channels = {name: source if is_s3(source) else f"file://{source}"
                    for name, source in self.sources.items()}
        if self.code is None:
            return TrialInputs(benchmark.name, channels)
        channels[CODE_CHANNEL] = publish(self.code)
        return TrialInputs(self.code.benchmark_file, channels)
