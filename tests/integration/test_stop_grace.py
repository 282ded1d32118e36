"""A launched orchestrator stopped mid-study (StopTrainingJob: `stbench cleanup`, the console)
gets SageMaker's stop grace, SIGTERM to SIGKILL, and its trial job ignores SIGTERM. Its close
must end inside that grace, leave no warm pool behind, and its results must reach S3.

The endpoint's grace is shortened (STBENCH_TEST_STOP_GRACE, default 30 s; AWS: 120 s): the
trial job then needs the whole grace to stop (the endpoint SIGKILLs it), longer than the
orchestrator's close may wait, as a trial that ignores SIGTERM does on AWS with the trainer's
stop grace raised. `STBENCH_TEST_STOP_GRACE=120` measures it with AWS's value; docs/reliability.md
has both.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import test_launch_emulator as launch_e2e
from test_launch_emulator import FAST, TRIAL_TYPE, jobs_of, run, sagemaker

from stbench.emulator import Emulator, EmulatorConfig
from stbench.emulator.account import ensure_bucket, ensure_execution_role

pytestmark = [pytest.mark.docker, pytest.mark.slow]
pushed = launch_e2e.pushed  # the images in a registry (fixture)

GRACE = float(os.environ.get("STBENCH_TEST_STOP_GRACE", "30"))
TAG = "grace"
SCRIPT = '''\
"""Reports every half second and ignores SIGTERM: only SIGKILL ends it."""
import argparse
import signal
import time

from syne_tune import Reporter

signal.signal(signal.SIGTERM, signal.SIG_IGN)
parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float, required=True)
parser.add_argument("--epochs", type=int, default=2000)
args, _ = parser.parse_known_args()
report = Reporter()
for epoch in range(1, args.epochs + 1):
    time.sleep(0.5)
    report(epoch=epoch, loss=(args.x - 0.5) ** 2 + 1.0 / epoch)
'''
YAML = """\
name: stubborn
script: train.py
config_space:
  x: {type: uniform, lower: 0.0, upper: 1.0}
  epochs: 2000
metric: loss
mode: min
max_resource_attr: epochs
resource_attr: epoch
max_wallclock_time: 900
n_workers: 1
instance_type: ml.c5.xlarge
"""


def wait_for(check: Any, what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"waited {timeout:.0f} s for {what}"
        time.sleep(0.5)
    return found


def test_a_stopped_orchestrator_closes_inside_the_grace_and_leaves_no_pool(
        pushed: dict[str, str], docker_client: Any, tmp_path: Path) -> None:
    folder = tmp_path / "stubborn"
    folder.mkdir()
    (folder / "train.py").write_text(SCRIPT)
    (folder / "stubborn.yaml").write_text(YAML)
    config = {**FAST, "stop_grace_seconds": GRACE}
    endpoint = Emulator(EmulatorConfig(
        quotas={f"{TRIAL_TYPE} for training warm pool usage": 2}, **config)).start()
    try:
        env = endpoint.environment()
        launched = run(endpoint, "launch", "--benchmark", str(folder / "stubborn.yaml"),
                       "--method", "RS", "--n_workers", "1", "--warm_pool", "1",
                       "--image", pushed["trainer"], "--experiment_tag", TAG,
                       "--role", ensure_execution_role(env),
                       "--s3_root", f"{ensure_bucket(env, 'grace-bucket')}/studies")
        assert launched.returncode == 0, launched.stderr[-2000:]
        orchestrator = f"{TAG}-stubborn-rs-0-o00"

        def reporting_trial() -> str | None:  # a trial job some seconds into training
            for name, job in jobs_of(endpoint, TAG).items():
                steps = {t["Status"]: t["StartTime"] for t in job["SecondaryStatusTransitions"]}
                if name != orchestrator and job["TrainingJobStatus"] == "InProgress" and (
                        "Training" in steps and time.time() - steps["Training"].timestamp() > 4):
                    return name
            return None

        trial = wait_for(reporting_trial, "a trial job in training", 240)
        client = sagemaker(endpoint)
        stopped_at = time.time()
        client.stop_training_job(TrainingJobName=orchestrator)

        def ended(name: str) -> dict[str, Any] | None:
            job = client.describe_training_job(TrainingJobName=name)
            return job if job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped") else None

        final = wait_for(lambda: ended(orchestrator), "the orchestrator to end", GRACE + 60)
        closed_in = final["TrainingEndTime"].timestamp() - stopped_at
        trial_then = client.describe_training_job(TrainingJobName=trial)["TrainingJobStatus"]
        wait_for(lambda: all(ended(name) for name in jobs_of(endpoint, TAG)),
                 "every job to end", GRACE + 60)
        trial_ended_in = ended(trial)["TrainingEndTime"].timestamp() - stopped_at
        print(f"stop grace {GRACE:g} s: orchestrator ended {closed_in:.1f} s after "
              f"StopTrainingJob (trial job then {trial_then}); trial job ended "
              f"{trial_ended_in:.1f} s after")
        assert final["TrainingJobStatus"] == "Stopped"
        assert closed_in < GRACE - 2, "its close ran into SIGKILL"
        if GRACE <= 30:  # the trial outlasts the close: the close did not wait for it
            assert trial_then == "Stopping" and trial_ended_in > closed_in
        jobs = jobs_of(endpoint, TAG)
        pools = {name: (job.get("WarmPoolStatus") or {}).get("Status")
                 for name, job in jobs.items() if name != orchestrator}
        assert set(pools.values()) <= {None, "Terminated", "Reused"}, pools
        assert jobs[trial]["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 0

        fetched = run(endpoint, "results", "--experiment_tag", TAG,
                      "--results_root", str(tmp_path / "results"))
        assert fetched.returncode == 0, fetched.stderr[-2000:]
        experiment = next((tmp_path / "results" / TAG).rglob("metadata.json")).parent
        metadata = json.loads((experiment / "metadata.json").read_text())
        assert metadata["status"] == "interrupted" and metadata["end_time"], metadata
        rows = [json.loads(line) for line in
                (experiment / "results.jsonl").read_text().splitlines()]
        assert any(row["metrics"].get("epoch") for row in rows), "the trial's reports"
        left = docker_client.containers.list(  # type: ignore[attr-defined]
            all=True, filters={"label": f"stbench.emulator={endpoint.id}"})
        assert left == []
    finally:
        endpoint.close()
