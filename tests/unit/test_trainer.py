"""The trainer entrypoint (`stbench-trainer train`), run as the real console script.

Each test builds a fake `/opt/ml` in tmp_path (STBENCH_OPT_ML) and checks the contract the
SageMaker and Docker back-ends rely on: typed arguments, the metrics channel, the failure file,
exit codes and the stop protocol.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from stbench.model.benchmark import decode_hyperparameters
from stbench.model.catalog import load_benchmark
from stbench.model.container_contract import end_line
from stbench.model.errors import UserError
from stbench.trainer.main import describe_failure, exit_status, main
from stbench.trainer.runner import RunResult

TRAINER = Path(sys.executable).parent / "stbench-trainer"  # the installed console script
JOB = "job-1"
FAST_CURVES = {
    "stbench_benchmark": "synthetic_curves", "x": "1.0", "log_lr": "-2.5", "width": "17",
    "epochs": "3", "epoch_duration": "0.01",
}

# A user benchmark whose script reports exactly what it received, without importing Syne Tune
# (fast), and can ignore stop signals and leave a helper process behind (stop tests).
USER_YAML = """\
name: echo
script: echo_args.py
metric: loss
mode: min
resource_attr: epoch
max_resource_attr: epochs
max_wallclock_time: 10
n_workers: 1
instance_type: ml.c5.large
config_space:
  n: {type: randint, lower: 1, upper: 100}
  lr: {type: loguniform, lower: 1.0e-5, upper: 1.0}
  act: {type: choice, values: [relu, tanh]}
  batch_size: {type: choice, values: [16, 32]}
  flag: true
  label: abc
  epochs: 2
  hang: 0
"""
USER_SCRIPT = """\
import argparse, json, os, signal, subprocess, sys, time
parser = argparse.ArgumentParser()
for name in ("n", "lr", "act", "batch_size", "flag", "label", "epochs", "hang",
             "st_checkpoint_dir"):
    parser.add_argument("--" + name)
args = parser.parse_args()
int(args.n), int(args.batch_size), float(args.lr), int(args.epochs)  # would fail if mistyped
report = dict(vars(args), argv=sys.argv[1:],
              checkpoint_exists=os.path.isdir(args.st_checkpoint_dir),
              warm_pool=os.environ.get("SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY"))
if args.hang == "1":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    helper = subprocess.Popen(["sleep", "60"])
    report["helper_pid"] = helper.pid
print("some log line")
print("[tune-metric]: " + json.dumps(report), flush=True)
if args.hang == "1":
    time.sleep(60)
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A fresh /opt/ml with the resource config SageMaker writes."""
    config = tmp_path / "opt_ml" / "input" / "config"
    config.mkdir(parents=True)
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]})
    )
    return tmp_path / "opt_ml"


@pytest.fixture
def user_benchmark(tmp_path: Path) -> Path:
    (tmp_path / "echo_args.py").write_text(USER_SCRIPT)
    path = tmp_path / "echo.yaml"
    path.write_text(USER_YAML)
    return path


def user_hyperparameters(path: Path, **extra: str) -> dict[str, str]:
    return {"stbench_benchmark": str(path), "n": "17", "lr": "1e-3", "act": "tanh",
            "batch_size": "32", "epochs": "1", **extra}


def write_hyperparameters(root: Path, values: Any) -> None:
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(values))


def trainer_env(root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STBENCH_", "SAGEMAKER_"))}
    return {**env, "STBENCH_OPT_ML": str(root), "STBENCH_METRICS_DIR": str(root.parent / "m"),
            "TRAINING_JOB_NAME": JOB, **extra}


def run_trainer(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(TRAINER), *args], env=trainer_env(root, **env),
                          capture_output=True, text=True, timeout=60)


def channel(root: Path) -> list[dict[str, Any]]:
    path = root.parent / "m" / f"{JOB}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def failure(root: Path) -> str:
    return (root / "output" / "failure").read_text()


def reports(stdout: str) -> list[dict[str, Any]]:
    prefix = "[tune-metric]: "
    return [json.loads(line[len(prefix):]) for line in stdout.splitlines()
            if line.startswith(prefix)]


# --- success ----------------------------------------------------------------------------------

def test_synthetic_curves_completes_and_reports_to_channel_and_stdout(root: Path) -> None:
    write_hyperparameters(root, FAST_CURVES)
    (root / "output").mkdir()
    (root / "output" / "failure").write_text("stale reason from an earlier job\n")
    before = time.time()
    done = run_trainer(root, "train")
    assert done.returncode == 0, done.stderr
    echoed = reports(done.stdout)
    assert [r["epoch"] for r in echoed] == [1, 2, 3]
    # last: how many reports there were, for a reader of late-arriving logs (CloudWatch)
    assert done.stdout.splitlines()[-1] == end_line(3)
    sent = channel(root)
    assert [r["epoch"] for r in sent] == [1, 2, 3]
    for mine, theirs in zip(sent, echoed, strict=True):
        assert before <= mine.pop("st_trainer_timestamp") <= time.time()
        assert mine == theirs
    assert not (root / "output" / "failure").exists()
    assert (root / "checkpoints").is_dir() and (root / "model").is_dir()
    assert "host algo-1 of ['algo-1']" in done.stderr
    assert "warm-pool cache: not set" in done.stderr


def test_typed_values_checkpoints_and_warm_pool_reach_the_script(
        root: Path, user_benchmark: Path) -> None:
    write_hyperparameters(root, user_hyperparameters(user_benchmark))
    done = run_trainer(root, "train", SAGEMAKER_MANAGED_WARMPOOL_CACHE_DIRECTORY="/cache/x")
    assert done.returncode == 0, done.stderr
    assert "some log line" in done.stdout
    [report] = channel(root)
    # ints stay ints, floats are floats, choices and absent fixed entries keep their values
    assert report["argv"] == [
        "--n=17", "--lr=0.001", "--act=tanh", "--batch_size=32", "--flag=True",
        "--label=abc", "--epochs=1", "--hang=0",
        f"--st_checkpoint_dir={root / 'checkpoints'}",
    ]
    assert report["checkpoint_exists"] is True
    assert report["warm_pool"] == "/cache/x"
    assert "warm-pool cache: /cache/x" in done.stderr


def test_decode_hyperparameters_types_values_through_the_config_space() -> None:
    benchmark = load_benchmark("mlp_digits")
    config = decode_hyperparameters(benchmark, {
        "n_units": "64", "learning_rate": "0.01", "alpha": "1e-4", "batch_size": "32",
    })
    assert config == {"n_units": 64, "learning_rate": 0.01, "alpha": 1e-4, "batch_size": 32,
                      "epochs": 27}
    assert [type(v) for v in config.values()] == [int, float, float, int, int]
    with pytest.raises(UserError) as info:
        decode_hyperparameters(benchmark, {"n_units": "64.5", "learning_rate": "2",
                                           "batch_size": "17", "epochs": "0", "lr": "1"})
    message = str(info.value)
    assert message.startswith("hyperparameters do not fit benchmark 'mlp_digits': ")
    for part in ("unknown hyperparameter 'lr'", "--n_units '64.5': expected a int",
                 "--learning_rate '2': allowed range", "--alpha is missing",
                 "--batch_size '17': choose one of [16, 32, 64, 128]",
                 "--epochs must be a positive integer"):
        assert part in message


# --- failures ---------------------------------------------------------------------------------

def test_crashing_script_writes_the_error_first_in_the_failure_file(root: Path) -> None:
    write_hyperparameters(root, {**FAST_CURVES, "failure_probability": "1.0"})
    done = run_trainer(root, "train")
    assert done.returncode == 1
    reason = failure(root)
    assert reason.startswith("exit code 1: RuntimeError: injected failure at epoch ")
    assert "Traceback" in reason and "\n" not in reason.rstrip("\n")
    assert reason.strip() in done.stderr


def test_out_of_range_value_fails_before_running_anything(root: Path) -> None:
    write_hyperparameters(root, {**FAST_CURVES, "x": "5.0"})
    done = run_trainer(root, "train")
    assert done.returncode == 2
    assert failure(root).startswith(
        "hyperparameters do not fit benchmark 'synthetic_curves': --x '5.0': allowed range"
    )
    assert done.stdout == end_line(0) + "\n" and channel(root) == []


@pytest.mark.parametrize("values, expected", [
    ({**FAST_CURVES, "colour": "red"}, "unknown hyperparameter 'colour': remove it"),
    ({**FAST_CURVES, "stbench_benchmark": "nope"}, "unknown benchmark 'nope'; valid ones:"),
    ({k: v for k, v in FAST_CURVES.items() if k != "stbench_benchmark"},
     "hyperparameters have no 'stbench_benchmark'"),
    ({**FAST_CURVES, "width": 17}, "hyperparameter 'width' is 17; SageMaker passes strings"),
    (["not", "an", "object"], "must hold a JSON object"),
    ({**FAST_CURVES, **{f"k{i}": "1" for i in range(100)}}, "SageMaker allows at most 100"),
    (None, "no hyperparameters at"),
])
def test_bad_input_exits_2_with_a_reason(root: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str], values: Any,
                                         expected: str) -> None:
    """In-process (the slow imports once), the same main() the console script runs."""
    if values is not None:
        write_hyperparameters(root, values)
    monkeypatch.setenv("STBENCH_OPT_ML", str(root))
    assert main(["train"]) == 2
    assert expected in failure(root)
    assert expected in capsys.readouterr().err


def test_signal_death_is_128_plus_signal_and_named() -> None:
    killed = RunResult(returncode=-9, stderr_tail=["", "loading data"])
    assert exit_status(-9) == 137 and exit_status(3) == 3
    assert describe_failure(killed, 30.0) == (
        "killed by signal SIGKILL (out of memory?): loading data"
    )


# --- stopping ---------------------------------------------------------------------------------

def wait_for_report(root: Path, process: subprocess.Popen[bytes], seconds: float = 20.0) -> None:
    """A report proves the script runs (and our signal handlers are in place)."""
    deadline = time.monotonic() + seconds
    while not channel(root):
        assert process.poll() is None and time.monotonic() < deadline, "no report arrived"
        time.sleep(0.05)


def test_sigterm_stops_a_long_trial_quickly(root: Path) -> None:
    write_hyperparameters(root, {**FAST_CURVES, "epochs": "30", "epoch_duration": "1.0"})
    process = subprocess.Popen([str(TRAINER), "train"], env=trainer_env(root),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for_report(root, process)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=10)
    assert time.monotonic() - sent < 2.5
    assert process.returncode == 128 + signal.SIGTERM  # the script's own death by SIGTERM
    assert failure(root).startswith("stopped by SIGTERM: the training script ended by signal")
    assert b"received SIGTERM" in err
    assert len(channel(root)) < 30


def test_sigint_kills_a_script_ignoring_stop_after_the_grace_period(
        root: Path, user_benchmark: Path) -> None:
    write_hyperparameters(root, user_hyperparameters(user_benchmark, hang="1"))
    process = subprocess.Popen([str(TRAINER), "train"],
                               env=trainer_env(root, STBENCH_STOP_GRACE="0.5"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_report(root, process)
    helper = channel(root)[0]["helper_pid"]
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    process.wait(timeout=10)
    assert 0.4 < time.monotonic() - sent < 2.5
    assert process.returncode == 128 + signal.SIGKILL
    assert failure(root).startswith(
        "stopped by SIGINT: the training script ended by signal SIGKILL after the 0.5 s grace"
    )
    assert helper_gone(helper), "the script's helper process survived: group not signalled"


def test_sigterm_while_starting_up_runs_nothing(root: Path) -> None:
    """As a container PID 1 an unhandled SIGTERM would be ignored: we handle it from the start."""
    write_hyperparameters(root, FAST_CURVES)
    process = subprocess.Popen([str(TRAINER), "train"], env=trainer_env(root),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stderr is not None
    assert b"training job" in process.stderr.readline()  # logged once the handlers are in place
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=20)
    assert process.returncode == 128 + signal.SIGTERM
    assert failure(root).startswith("stopped by SIGTERM before the training script started")
    assert out.decode() == end_line(0) + "\n" and channel(root) == []


def test_sigterm_during_the_imports_is_not_lost(root: Path) -> None:
    """A StopTrainingJob in the first second, while the trainer still imports: as a
    container's PID 1 it would have been ignored (the job trained to its end); here, outside
    a container, it killed the trainer without a failure reason. It stops the job cleanly."""
    write_hyperparameters(root, FAST_CURVES)
    process = subprocess.Popen([str(TRAINER), "train"], env=trainer_env(root),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # the entry point has set its handler, the trainer's modules (a second of imports) are
    # not loaded yet; a fixed sleep sent the signal before the interpreter was up under load
    assert handler_set(process.pid, signal.SIGTERM)
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=20)
    assert process.returncode == 128 + signal.SIGTERM
    assert failure(root).startswith("stopped by SIGTERM before the training script started")
    assert channel(root) == []


def handler_set(pid: int, sig: int, seconds: float = 20.0) -> bool:
    """Whether the process catches `sig` (its SigCgt mask in /proc) within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status").read_text()
        caught = int(next(line for line in status.splitlines()
                          if line.startswith("SigCgt:")).split()[1], 16)
        if caught & (1 << (sig - 1)):
            return True
        time.sleep(0.002)
    return False


def helper_gone(pid: int, seconds: float = 3.0) -> bool:
    """Gone or a zombie nobody reaped yet (PID 1 in a container may not reap)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


# --- command line -----------------------------------------------------------------------------

@pytest.mark.parametrize("args, code, stream, expected", [
    ([], 2, "stderr", "usage: stbench-trainer train"),
    (["--help"], 0, "stdout", "usage: stbench-trainer train"),
    (["serve"], 2, "stderr", "stbench-trainer: error: unknown command 'serve'"),
])
def test_command_line(root: Path, args: list[str], code: int, stream: str,
                      expected: str) -> None:
    done = run_trainer(root, *args)
    assert done.returncode == code
    assert expected in getattr(done, stream)
    if args == ["serve"]:
        assert len(done.stderr.splitlines()) == 1
    assert not (root / "output").exists()
