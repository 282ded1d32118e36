"""`stbench-orchestrator`: the orchestrator image's entrypoint.

`docker run stbench-orchestrator --method ASHA` runs one study in the container, like
`stbench run`, with `--benchmark` defaulting to $STBENCH_BENCHMARK or mlp_digits and results
under $STBENCH_RESULTS_ROOT (default /results, mount a volume there to keep them).

`stbench-orchestrator train` is the remote mode: started as a SageMaker training job, it
reads its experiment spec from the job's hyperparameters and keeps its results in
/opt/ml/checkpoints, which SageMaker uploads to the job's checkpoint prefix while it runs and
restores when an interrupted job starts again: the study then resumes where it stopped.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from stbench.cli.main import guarded, run_and_report
from stbench.cli.main import main as stbench_main
from stbench.methods.registry import all_methods
from stbench.model.code_package import METHODS_CHANNEL, unpack_channel
from stbench.model.container_contract import hyperparameters_path, opt_ml_root, write_failure
from stbench.model.errors import UserError
from stbench.model.spec import ExperimentSpec
from stbench.trainer.code_channel import unpacked_benchmark


def train(root: Path) -> int:
    """Run the study whose spec came as hyperparameters; results live in the checkpoints."""
    config = hyperparameters_path(root)
    try:
        spec = ExperimentSpec.from_hyperparameters(json.loads(config.read_text()))
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"cannot read the experiment spec from {config}: {err}") from None
    if not spec.experiment_tag:
        raise UserError("the experiment spec has no experiment_tag; launch with `stbench launch`")
    # a user benchmark's folder comes as the job's `code` channel, as it does to its trials
    spec = replace(spec, benchmark=unpacked_benchmark(root, spec.benchmark, _log))
    add_method_packages(root)
    results = root / "checkpoints"
    # always a resume: a job restarted (RetryStrategy) before its first checkpoint upload has
    # no results yet, but its trial jobs exist and must be taken over, not named again
    return run_and_report(replace(spec, results_root=str(results), resume=True))


def add_method_packages(root: Path) -> None:
    """The installed method packages `stbench launch` shipped (the `methods` channel), first
    on sys.path, so their entry points join the built-in methods."""
    folder = root / "methods"
    archive = unpack_channel(root / "input" / "data" / METHODS_CHANNEL, folder)
    if archive is None:
        return
    sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    all_methods.cache_clear()
    _log(f"method packages from {archive.name}: {', '.join(all_methods())}")


def _log(message: str) -> None:
    print(f"stbench-orchestrator: {message}", file=sys.stderr, flush=True)


def _write_failure(root: Path, reason: str) -> None:
    try:
        write_failure(root, reason)
    except OSError:
        pass  # the job still fails by its exit status


def _has_flag(argv: list[str], name: str) -> bool:
    spellings = {f"--{name}", f"--{name.replace('_', '-')}"}
    return any(arg in spellings or arg.split("=")[0] in spellings for arg in argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:
        root = opt_ml_root()
        code = guarded(lambda: train(root), on_error=lambda reason: _write_failure(root, reason))
        if code == 1:
            _write_failure(root, "some experiments did not complete; see the results table")
        return code
    if argv[:1] in (["-h"], ["--help"]):
        return stbench_main(["run", "--help"])
    if not _has_flag(argv, "benchmark"):
        argv = ["--benchmark", os.environ.get("STBENCH_BENCHMARK", "mlp_digits"), *argv]
    if not _has_flag(argv, "results_root"):
        argv = ["--results_root", os.environ.get("STBENCH_RESULTS_ROOT", "/results"), *argv]
    return stbench_main(["run", *argv])


if __name__ == "__main__":
    sys.exit(main())
