"""`stbench-trainer train`: the trainer image's exec-form ENTRYPOINT.

Contract (docs/design.md, "The container contract"; its constants are in
stbench/model/container_contract.py): read the job's all-string hyperparameters from
`<root>/input/config/hyperparameters.json`, decode them through the benchmark's config space,
run its Syne Tune style script as a child process (with the training toolkit's `SM_*`
environment, trainer/toolkit_env.py), forward its `[tune-metric]` reports and explain any
failure in `<root>/output/failure` (unless the script wrote its own), whose first 1024
characters SageMaker shows as FailureReason. `<root>` is `/opt/ml`, or `$STBENCH_OPT_ML` in
tests. Hyperparameters may come from any SageMaker client (trainer/client_hyperparameters.py).
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from pathlib import Path

from stbench.model import container_contract as contract
from stbench.model.container_contract import (
    BENCHMARK_KEY,
    DEFAULT_OPT_ML,
    MAX_HYPERPARAMETERS,
    failure_path,
    hyperparameters_path,
    opt_ml_root,
)
from stbench.model.errors import UserError
from stbench.model.failures import killed_by, signal_name
from stbench.model.script_args import script_arguments
from stbench.trainer.client_hyperparameters import from_clients
from stbench.trainer.code_channel import install_requirements, unpacked_benchmark
from stbench.trainer.runner import MetricsChannel, RunResult, StopSignals, run_child
from stbench.trainer.toolkit_env import job_toolkit_environment, toolkit_folders

PROG = "stbench-trainer"
DEFAULT_JOB_NAME = "local-trial"
DEFAULT_STOP_GRACE = 30.0
INTERNAL_ERROR = 1
BAD_INPUT = UserError.exit_code  # 2, like the stbench CLI
# the line of a traceback that names the exception: the most useful part of a failure reason
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b")

USAGE = f"""\
usage: {PROG} train

Runs one stbench trial inside a SageMaker-style training job (the trainer image's ENTRYPOINT).
Reads $STBENCH_OPT_ML (default {DEFAULT_OPT_ML})/input/config/hyperparameters.json, whose
'{BENCHMARK_KEY}' names the benchmark and whose other keys are its config values; runs the
benchmark's training script with --st_checkpoint_dir <root>/checkpoints and the SM_* variables
of AWS's training toolkit (SM_HPS, SM_HP_<NAME>, SM_CHANNELS, SM_MODEL_DIR, ...). With no
command it runs 'train' when that file exists (SageMaker Python SDK local mode passes none).
Environment: STBENCH_METRICS_DIR (reports go to $STBENCH_METRICS_DIR/$TRAINING_JOB_NAME.jsonl),
STBENCH_STOP_GRACE (seconds between SIGTERM and SIGKILL on stop, default {DEFAULT_STOP_GRACE:g}).
Exit status: 0 on success, the script's status (128+N for signal N) on its failure, 2 for bad
hyperparameters or an unknown benchmark; the reason is written to <root>/output/failure,
unless the training script wrote one itself.
"""


def log(message: str) -> None:
    """The trainer's own lines go to stderr, so stdout carries only the script's output."""
    sys.stderr.write(f"{PROG}: {message}\n")
    sys.stderr.flush()


def read_hyperparameters(path: Path) -> dict[str, str]:
    """The job's hyperparameters, checked the way SageMaker would have checked them."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(
            f"no hyperparameters at {path}; the training job must set HyperParameters with "
            f"'{BENCHMARK_KEY}'"
        ) from None
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read {path}: {err}; it must be a JSON object") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} must hold a JSON object, not {type(data).__name__}")
    if len(data) > MAX_HYPERPARAMETERS:
        raise UserError(
            f"{path} has {len(data)} entries; SageMaker allows at most {MAX_HYPERPARAMETERS}"
        )
    for key, value in data.items():
        if not isinstance(value, str):
            raise UserError(
                f"hyperparameter '{key}' is {value!r}; SageMaker passes strings only, "
                f"send '{value}' as a string"
            )
    return data


def log_environment(root: Path) -> None:
    """What an operator needs from CloudWatch to understand where this trial ran."""
    log(f"training job {os.environ.get('TRAINING_JOB_NAME', DEFAULT_JOB_NAME)}, root {root}")
    resources = root / "input" / "config" / "resourceconfig.json"
    if resources.is_file():
        try:
            config = json.loads(resources.read_text(encoding="utf-8"))
            log(f"host {config.get('current_host')} of {config.get('hosts')}")
        except (OSError, ValueError, AttributeError) as err:
            log(f"ignoring unreadable {resources}: {err}")
    cache = os.environ.get(contract.WARMPOOL_CACHE_ENV)
    log(f"warm-pool cache: {cache}" if cache
        else f"warm-pool cache: not set ({contract.WARMPOOL_CACHE_ENV})")


def build_command(root: Path) -> list[str]:
    """The child's argument list (never a shell line), from the job's hyperparameters."""
    from stbench.model.benchmark import decode_hyperparameters  # slow import
    from stbench.model.catalog import load_benchmark  # slow import

    client = from_clients(read_hyperparameters(hyperparameters_path(root)))
    if client.sdk_settings:
        log(f"not passed to the script (SageMaker SDK settings): {', '.join(client.sdk_settings)}")
    hyperparameters = client.values
    name = hyperparameters.pop(BENCHMARK_KEY, None)
    if not name:
        raise UserError(
            f"hyperparameters have no '{BENCHMARK_KEY}'; set it to a built-in benchmark name "
            "or the path of a benchmark YAML inside the image"
        )
    benchmark = load_benchmark(unpacked_benchmark(root, name, log))  # a user's folder
    config = decode_hyperparameters(benchmark, hyperparameters)
    if not benchmark.script.is_file():
        raise UserError(f"training script {benchmark.script} of benchmark '{name}' not found")
    checkpoints = root / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    return [sys.executable, str(benchmark.script), *script_arguments(config, checkpoints)]


def metrics_path() -> Path | None:
    """`$STBENCH_METRICS_DIR/$TRAINING_JOB_NAME.jsonl`, or None: then reports are only echoed."""
    folder = os.environ.get("STBENCH_METRICS_DIR")
    if not folder:
        return None
    job = os.environ.get("TRAINING_JOB_NAME") or DEFAULT_JOB_NAME
    return Path(folder) / (re.sub(r"[^A-Za-z0-9._-]", "_", job).lstrip(".") + ".jsonl")


def stop_grace() -> float:
    raw = os.environ.get("STBENCH_STOP_GRACE", "")
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_STOP_GRACE
    except ValueError:
        log(f"ignoring STBENCH_STOP_GRACE={raw!r} (not a number): using {DEFAULT_STOP_GRACE:g}")
        return DEFAULT_STOP_GRACE


def exit_status(returncode: int) -> int:
    """The shell's convention, which `docker wait` and SageMaker see: 128+N for signal N."""
    return 128 - returncode if returncode < 0 else returncode


def describe_failure(result: RunResult, grace: float) -> str:
    """One paragraph, most useful part first: SageMaker keeps only 1024 characters."""
    lines = [line.strip() for line in result.stderr_tail if line.strip()]
    key = next((line for line in reversed(lines) if EXCEPTION_LINE.match(line)), None)
    if key is None and lines:
        key = lines[-1]
    code = result.returncode
    if result.stop_signal is not None:
        how = f"exit code {code}" if code >= 0 else f"signal {signal_name(-code)}"
        if code == -signal.SIGKILL:
            how += f" after the {grace:g} s grace period"
        reason = f"stopped by {signal_name(result.stop_signal)}: the training script ended by {how}"
    elif code < 0:
        reason = killed_by(-code) + (f": {key}" if key else "")
    else:
        reason = f"exit code {code}: {key or 'no error output'}"
    if lines and lines != [key]:
        reason += " -- last stderr lines: " + " | ".join(lines)
    return reason


def write_failure(root: Path, reason: str) -> None:
    log(f"failed: {reason}")
    if failure_path(root).is_file() and failure_path(root).stat().st_size:
        log(f"keeping the reason the training script wrote to {failure_path(root)}")
        return  # removed when the job started: the script wrote it, and knows better
    try:
        contract.write_failure(root, reason)
    except OSError as err:
        log(f"cannot write {failure_path(root)}: {err}")


def announce_end(reports: int) -> None:
    """The last stdout line: a reader of late-arriving logs (CloudWatch) that sees it knows
    how many reports to wait for."""
    sys.stdout.write(contract.end_line(reports) + "\n")
    sys.stdout.flush()


def train() -> int:
    root = opt_ml_root()
    failure_path(root).unlink(missing_ok=True)  # a stale reason from a reused root
    grace = stop_grace()
    with StopSignals(grace, log) as stops:
        log_environment(root)
        try:
            argv = build_command(root)
            install_requirements(root, stops, log)
            for folder in toolkit_folders(root):  # SageMaker's platform makes them
                folder.mkdir(parents=True, exist_ok=True)
        except UserError as err:
            write_failure(root, str(err))
            announce_end(0)
            return BAD_INPUT
        if stops.stop_signal is not None:
            write_failure(root, f"stopped by {signal_name(stops.stop_signal)} before the "
                          "training script started")
            announce_end(0)
            return 128 + stops.stop_signal
        log("running " + " ".join(argv[1:]))
        started = time.monotonic()
        result = run_child(argv, MetricsChannel(metrics_path()), stops, log,
                           job_toolkit_environment(root))
        announce_end(result.reports)
    seconds = time.monotonic() - started
    if result.returncode == 0:
        log(f"training script completed in {seconds:.1f} s with {result.reports} reports")
        return 0
    write_failure(root, describe_failure(result, grace))
    return exit_status(result.returncode)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args and hyperparameters_path(opt_ml_root()).is_file():
        args = ["train"]  # a job started without a command (SageMaker Python SDK local mode)
    if not args:
        sys.stderr.write(USAGE)
        return BAD_INPUT
    if args[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0
    if args != ["train"]:
        log(f"error: unknown command {' '.join(args)!r}; the only command is 'train' "
            f"(see {PROG} --help)")
        return BAD_INPUT
    try:
        return train()
    except Exception as err:  # a bug of ours: still tell SageMaker why the job failed
        write_failure(opt_ml_root(), f"{PROG} internal error: {type(err).__name__}: {err}")
        return INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
