"""The cost estimate and `--dry_run` against the local SageMaker endpoint: a dry run of
`stbench launch` and of `stbench run --backend sagemaker` prints the plan and its dollars and
leaves the endpoint's jobs, buckets and objects (and the results folder) as they were; a real
launch prints the estimate before its first job's name."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import test_launch_emulator
from test_bad_input_endpoint import snapshot
from test_launch_emulator import (
    STBENCH,
    TRIAL_TYPE,
    jobs_of,
    launch_args,
    run,
    start_endpoint,
)

from stbench.emulator import Emulator
from stbench.emulator.account import ensure_bucket, ensure_execution_role

pytestmark = [pytest.mark.docker]

TRAINING_QUOTA = 8
pushed = test_launch_emulator.pushed  # the fixture: both role images in a real registry


@pytest.fixture(scope="module")
def endpoint(docker_client: Any) -> Iterator[Emulator]:
    emulator = start_endpoint(**{f"{TRIAL_TYPE} for training job usage": TRAINING_QUOTA})
    yield emulator
    emulator.close()


def test_a_launch_dry_run_prints_the_plan_and_dollars_and_creates_nothing(
        endpoint: Emulator, pushed: dict[str, str]) -> None:
    args = launch_args(endpoint, pushed, "dry", "dry-bucket", "--method", "RS", "ASHA",
                       "--num_seeds", "2", "--dry_run")
    before = snapshot(endpoint)
    planned = run(endpoint, *args)
    assert planned.returncode == 0, planned.stderr[-2000:]
    out = planned.stdout.splitlines()
    assert out[0] == ("dry run of study 'dry': 4 orchestrator jobs would be launched, 0 "
                      "skipped; nothing was created")
    assert out[1] == ("  dry-synthetic-curves-rs-0-o00: synthetic_curves RS seed 0: "
                      "orchestrator on ml.m5.large for at most 30.5 min; trial jobs "
                      f"dry-synthetic-curves-rs-0-t… on {TRIAL_TYPE}, 1 at once for 30 s")
    assert "  dry-synthetic-curves-asha-1-o00: synthetic_curves ASHA seed 1: " in out[4]
    # quotas: 4 experiments at once, each 1 trial and 1 orchestrator; the endpoint's
    # Service Quotas answer what the account allows
    assert f"  '{TRIAL_TYPE} for training job usage': 4 (the account allows " \
           f"{TRAINING_QUOTA})" in out
    assert any(line.startswith("  'ml.m5.large for training job usage': 4 (the account "
                               "allows ") for line in out), out
    estimate = [line for line in out if line.startswith("cost estimate")]
    assert len(estimate) == 1, out
    assert f"{TRIAL_TYPE} $0.01 (trials: 4 experiments x 1 instance x 30 s)" in estimate[0]
    assert "ml.m5.large $0.23 (orchestrators: 4 jobs x 30.5 min)" in estimate[0]
    assert estimate[0].endswith("study total at most $0.24")
    assert snapshot(endpoint) == before  # no job, no study.json, no code
    assert jobs_of(endpoint, "dry") == {}

    # bad input in a dry run: the one line, exit 2, nothing
    refused = run(endpoint, *args, "--max_cost", "-1")
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr.splitlines() == ["stbench: error: --max_cost must be positive, got -1.0"]
    assert snapshot(endpoint) == before


def test_a_sagemaker_run_dry_run_creates_no_job_and_no_results_folder(
        endpoint: Emulator, pushed: dict[str, str], tmp_path: Path) -> None:
    env = endpoint.environment()
    args = ["run", "--benchmark", "synthetic_curves", "--method", "ASHA", "--backend",
            "sagemaker", "--image", pushed["trainer"], "--role", ensure_execution_role(env),
            "--s3_root", f"{ensure_bucket(env, 'dry-bucket')}/runs", "--experiment_tag",
            "dryrun", "--max_wallclock_time", "3600", "--n_workers", "4", "--warm_pool",
            "--no_quota_check", "--results_root", str(tmp_path / "results"), "--dry_run"]
    before = snapshot(endpoint)
    planned = run(endpoint, *args)
    assert planned.returncode == 0, planned.stderr[-2000:]
    out = planned.stdout.splitlines()
    assert out[0].startswith("dry run of experiment tag dryrun: synthetic_curves x ASHA x "
                             "seeds 0..0, 4 workers, 3600 s each")
    assert out[1] == (f"  ASHA seed 0: results in {tmp_path}/results/dryrun/synthetic_curves/"
                      f"ASHA/0; trial jobs dryrun-synthetic-curves-asha-0-t… on {TRIAL_TYPE}, "
                      "4 at once")
    assert f"  '{TRIAL_TYPE} for training warm pool usage': 4 (not checked " \
           "(--no_quota_check))" in out
    # 4 x 1 h x $0.204, and 4 pools x 10 min after the end
    assert (f"cost estimate, an upper bound at SageMaker us-east-1 prices as of 2026-11-27: "
            f"{TRIAL_TYPE} $0.95 (trials: 1 experiment x 4 instances x 1 h = $0.82; warm pools' "
            "keep-alive at the end: 4 pools x 10 min = $0.14) | study total at most $0.95"
            ) in out
    assert snapshot(endpoint) == before
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_launch_prints_its_estimate_before_its_first_job(
        pushed: dict[str, str], docker_client: Any) -> None:
    emulator = start_endpoint()
    try:
        env = {**os.environ, **emulator.environment(), "AWS_EC2_METADATA_DISABLED": "true"}
        launched = subprocess.run(
            [str(STBENCH), *launch_args(emulator, pushed, "priced", "priced-bucket",
                                        "--method", "RS")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, timeout=300)
        assert launched.returncode == 0, launched.stdout[-2000:]
        lines = launched.stdout.splitlines()
        name = "priced-synthetic-curves-rs-0-o00"
        assert name in lines, lines
        estimate = [index for index, line in enumerate(lines)
                    if line.startswith("cost estimate, an upper bound")]
        assert len(estimate) == 1 and estimate[0] < lines.index(name), lines
        assert "ml.m5.large $0.06 (orchestrators: 1 job x 30.5 min)" in lines[estimate[0]]
        job = jobs_of(emulator, "priced")[name]  # the bound is the job's own limit
        assert job["StoppingCondition"]["MaxRuntimeInSeconds"] == 1830
    finally:
        emulator.close()
    left = docker_client.containers.list(  # type: ignore[attr-defined]
        all=True, filters={"label": f"stbench.emulator={emulator.id}"})
    assert left == []
