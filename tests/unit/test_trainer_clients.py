"""The trainer as clients other than stbench drive it (issue 12, "the whole contract").

A script written for AWS's framework images reads the training toolkit's `SM_*` variables;
the SageMaker Python SDK 2.x JSON-encodes every hyperparameter and adds `sagemaker_*` ones,
3.x sends strings as they are and starts the container with no command; a script may write
its own failure reason. Each test runs the installed `stbench-trainer` on a fake /opt/ml.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from stbench.backends.jobs.job_requests import hyperparameters as job_hyperparameters
from stbench.model.benchmark import decode_hyperparameters
from stbench.model.catalog import load_benchmark
from stbench.trainer.client_hyperparameters import from_clients
from stbench.trainer.toolkit_env import toolkit_environment

TRAINER = Path(sys.executable).parent / "stbench-trainer"

# A user benchmark (written as YAML by the fixture) whose script reports what it received.
BENCHMARK = {
    "name": "env_echo", "script": "env_echo.py", "metric": "loss", "mode": "min",
    "resource_attr": "epoch", "max_resource_attr": "epochs", "max_wallclock_time": 10,
    "n_workers": 1, "instance_type": "ml.c5.xlarge",
    "config_space": {
        "n": {"type": "randint", "lower": 1, "upper": 100},
        "lr": {"type": "loguniform", "lower": 1.0e-5, "upper": 1.0},
        "act": {"type": "choice", "values": ["relu", "tanh"]},
        "label": "abc", "epochs": 2, "fail": 0,
    },
}
# Reports its arguments and the toolkit's variables; with --fail 1 it writes its own failure
# reason where a toolkit-style script finds the output folder, and exits 3.
BENCH_SCRIPT = """\
import argparse, json, os, sys
parser = argparse.ArgumentParser()
for name in ("n", "lr", "act", "label", "epochs", "fail", "st_checkpoint_dir"):
    parser.add_argument("--" + name)
args = parser.parse_args()
env = {k: v for k, v in os.environ.items() if k.startswith("SM_")}
print("[tune-metric]: " + json.dumps({"loss": 0.5, "args": vars(args), "env": env}), flush=True)
if args.fail == "1":
    with open(os.path.join(os.environ["SM_OUTPUT_DIR"], "failure"), "w") as out:
        out.write("OutOfData: the train channel is empty")
    sys.exit(3)
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A fresh /opt/ml as SageMaker lays it out for a job with two data channels."""
    config = tmp_path / "opt_ml" / "input" / "config"
    config.mkdir(parents=True)
    (config / "resourceconfig.json").write_text(json.dumps(
        {"current_host": "algo-2", "hosts": ["algo-1", "algo-2"],
         "network_interface_name": "eth0"}))
    channel = {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated",
               "RecordWrapperType": "None"}
    (config / "inputdataconfig.json").write_text(json.dumps({"train": channel, "test": channel}))
    (tmp_path / "env_echo.py").write_text(BENCH_SCRIPT)
    (tmp_path / "env_echo.yaml").write_text(yaml.safe_dump(BENCHMARK))
    return tmp_path / "opt_ml"


def run_trainer(root: Path, hyperparameters: dict[str, str], *args: str,
                **env: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("STBENCH_", "SAGEMAKER_", "SM_"))}
    done = subprocess.run(
        [str(TRAINER), *args], capture_output=True, text=True, timeout=60,
        env={**base, "STBENCH_OPT_ML": str(root), "TRAINING_JOB_NAME": "job-1",
             "CUDA_VISIBLE_DEVICES": "", **env})
    prefix = "[tune-metric]: "
    reports = [json.loads(line[len(prefix):]) for line in done.stdout.splitlines()
               if line.startswith(prefix)]
    return done, (reports[0] if reports else {})


def benchmark_path(root: Path) -> str:
    return str(root.parent / "env_echo.yaml")


def test_a_toolkit_script_finds_the_sm_variables(root: Path) -> None:
    hps = {"stbench_benchmark": benchmark_path(root), "n": "17", "lr": "0.001", "act": "tanh"}
    done, report = run_trainer(root, hps, "train")
    assert done.returncode == 0, done.stderr
    env = report["env"]
    assert json.loads(env["SM_HPS"]) == {"stbench_benchmark": benchmark_path(root), "n": 17,
                                         "lr": 0.001, "act": "tanh"}
    assert (env["SM_HP_N"], env["SM_HP_LR"], env["SM_HP_ACT"]) == ("17", "0.001", "tanh")
    assert json.loads(env["SM_CHANNELS"]) == ["test", "train"]
    assert env["SM_CHANNEL_TRAIN"] == str(root / "input" / "data" / "train")
    assert env["SM_CHANNEL_TEST"] == str(root / "input" / "data" / "test")
    assert env["SM_MODEL_DIR"] == str(root / "model")
    assert env["SM_OUTPUT_DATA_DIR"] == str(root / "output" / "data")
    assert env["SM_CURRENT_HOST"] == "algo-2"
    assert json.loads(env["SM_HOSTS"]) == ["algo-1", "algo-2"]
    assert env["SM_NUM_GPUS"] == "0"
    assert int(env["SM_NUM_CPUS"]) >= 1
    assert json.loads(env["SM_TRAINING_ENV"])["channel_input_dirs"]["train"] == \
        env["SM_CHANNEL_TRAIN"]


def test_the_jobs_own_environment_wins_over_the_toolkit_values(root: Path) -> None:
    hps = {"stbench_benchmark": benchmark_path(root), "n": "17", "lr": "0.001", "act": "tanh"}
    done, report = run_trainer(root, hps, "train", SM_MODEL_DIR="/elsewhere")
    assert done.returncode == 0, done.stderr
    assert report["env"]["SM_MODEL_DIR"] == "/elsewhere"


def test_without_config_files_one_host_and_no_channels() -> None:
    env = toolkit_environment(Path("/nowhere/opt/ml"), {"epochs": "3", "act": "relu"},
                              num_gpus=2, num_cpus=4)
    assert (env["SM_CURRENT_HOST"], env["SM_HOSTS"], env["SM_CHANNELS"]) == \
        ("algo-1", '["algo-1"]', "[]")
    assert (env["SM_HP_EPOCHS"], env["SM_HP_ACT"], env["SM_NUM_GPUS"]) == ("3", "relu", "2")
    assert json.loads(env["SM_USER_ARGS"]) == ["--act", "relu", "--epochs", "3"]


def sdk2(values: dict[str, Any]) -> dict[str, str]:
    """What a SageMaker Python SDK 2.x framework estimator sends: every value JSON-encoded,
    plus its own settings."""
    encoded = {key: json.dumps(value) for key, value in values.items()}
    return {**encoded, "sagemaker_program": '"train.py"', "sagemaker_region": '"us-east-1"',
            "sagemaker_container_log_level": "20"}


def test_sdk_2_and_3_encodings_reach_the_script_typed_alike(root: Path) -> None:
    values = {"stbench_benchmark": benchmark_path(root), "n": 17, "lr": 0.001, "act": "tanh",
              "label": "xyz"}
    sdk3 = {key: value if isinstance(value, str) else json.dumps(value)
            for key, value in values.items()}
    done2, report2 = run_trainer(root, sdk2(values), "train")
    done3, report3 = run_trainer(root, sdk3, "train")
    assert done2.returncode == 0, done2.stderr
    assert done3.returncode == 0, done3.stderr
    expected = {"n": "17", "lr": "0.001", "act": "tanh", "label": "xyz", "epochs": "2"}
    for report in (report2, report3):
        assert {k: report["args"][k] for k in expected} == expected
    assert "sagemaker_program" in done2.stderr  # named as left out, not an error
    assert "SM_HP_SAGEMAKER_PROGRAM" not in report2["env"]
    assert report2["env"]["SM_HPS"] == report3["env"]["SM_HPS"]


def test_a_failure_reason_the_script_wrote_is_kept(root: Path) -> None:
    hps = {"stbench_benchmark": benchmark_path(root), "n": "17", "lr": "0.001", "act": "tanh",
           "fail": "1"}
    done, _ = run_trainer(root, hps, "train")
    assert done.returncode == 3
    assert (root / "output" / "failure").read_text() == "OutOfData: the train channel is empty"


def test_no_command_runs_the_job_when_it_has_hyperparameters(root: Path) -> None:
    hps = {"stbench_benchmark": benchmark_path(root), "n": "17", "lr": "0.001", "act": "tanh"}
    done, report = run_trainer(root, hps)
    assert done.returncode == 0, done.stderr
    assert report["args"]["n"] == "17"


def test_every_clients_encoding_types_back_through_the_config_space(tmp_path: Path) -> None:
    """What a trial's script receives does not depend on the client that sent the job:
    stbench itself and SDK 3.x (strings as they are, the rest JSON) or SDK 2.x (all JSON)."""
    space = {"flag": {"type": "choice", "values": [True, False]},
             "rate": {"type": "choice", "values": [0.1, 0.5]},
             "act": {"type": "choice", "values": ["relu", "tanh"]},
             "n": {"type": "randint", "lower": 1, "upper": 9}, "epochs": 2}
    (tmp_path / "s.py").write_text("")
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({**BENCHMARK, "script": "s.py",
                                                     "config_space": space}))
    benchmark = load_benchmark(str(tmp_path / "b.yaml"))
    config = {"flag": True, "rate": 0.5, "act": "tanh", "n": 3}
    sent = {"stbench": job_hyperparameters("b", config),
            "sdk2": from_clients(sdk2({"stbench_benchmark": "b", **config})).values}
    for client, hps in sent.items():
        hps.pop("stbench_benchmark")
        typed = decode_hyperparameters(benchmark, from_clients(hps).values)
        assert typed == {**config, "epochs": 2}, client
