"""Trials as real trainer containers: the SageMaker contract, the local job service, warm slots."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from stbench.backends.jobs.job_requests import JobTemplate, trial_request
from stbench.backends.jobs.local_docker import LocalDockerJobService
from stbench.cli.main import main
from stbench.model.job_statuses import COMPLETED, FAILED, STOPPED, STOPPING

pytestmark = pytest.mark.docker

FAST = {"x": 1.0, "log_lr": -2.5, "width": 32, "epochs": 3, "epoch_duration": 0.05,
        "failure_probability": 0.0}


def opt_ml(tmp_path: Path, config: dict[str, Any]) -> Path:
    root = tmp_path / "opt_ml"
    (root / "input" / "config").mkdir(parents=True)
    hps = {"stbench_benchmark": "synthetic_curves", **{k: str(v) for k, v in config.items()}}
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hps))
    return root


def run_trainer(docker_client: Any, image: str, root: Path, metrics: Path,
                detach: bool = False) -> Any:
    metrics.mkdir(exist_ok=True)
    return docker_client.containers.run(
        image, ["train"], network_mode="host", detach=True,
        environment={"TRAINING_JOB_NAME": "contract-job", "STBENCH_METRICS_DIR": "/metrics"},
        volumes={str(root): {"bind": "/opt/ml", "mode": "rw"},
                 str(metrics): {"bind": "/metrics", "mode": "rw"}},
    )


def test_trainer_image_honours_the_training_contract(docker_client: Any, images: dict,
                                                      tmp_path: Path) -> None:
    root = opt_ml(tmp_path, FAST)
    container = run_trainer(docker_client, images["trainer"], root, tmp_path / "metrics")
    try:
        assert container.wait(timeout=60)["StatusCode"] == 0
        logs = container.logs().decode()
    finally:
        container.remove(force=True)
    assert logs.count("[tune-metric]") == 3, "reports are echoed to stdout for CloudWatch"
    channel = (tmp_path / "metrics" / "contract-job.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in channel] == [1, 2, 3]
    assert not (root / "output" / "failure").exists()
    assert (root / "checkpoints").is_dir()


def test_crashing_config_writes_the_failure_reason(docker_client: Any, images: dict,
                                                   tmp_path: Path) -> None:
    root = opt_ml(tmp_path, {**FAST, "failure_probability": 1.0})
    container = run_trainer(docker_client, images["trainer"], root, tmp_path / "metrics")
    try:
        assert container.wait(timeout=60)["StatusCode"] != 0
    finally:
        container.remove(force=True)
    assert "injected failure" in (root / "output" / "failure").read_text()


def test_docker_stop_ends_the_trial_cleanly(docker_client: Any, images: dict,
                                            tmp_path: Path) -> None:
    root = opt_ml(tmp_path, {**FAST, "epochs": 60, "epoch_duration": 1.0})
    container = run_trainer(docker_client, images["trainer"], root, tmp_path / "metrics")
    try:
        time.sleep(3)
        container.stop(timeout=20)  # SIGTERM, like StopTrainingJob
        state = docker_client.api.inspect_container(container.id)["State"]
    finally:
        container.remove(force=True)
    assert state["ExitCode"] == 143, "the trainer forwards SIGTERM and exits with the child"
    assert "SIGTERM" in (root / "output" / "failure").read_text()


def template(tmp_path: Path, image: str, keep_alive: int) -> JobTemplate:
    return JobTemplate(image=image, benchmark="synthetic_curves", instance_type="ml.c5.large",
                       checkpoint_root=f"file://{tmp_path}/checkpoints/",
                       output_root=f"file://{tmp_path}/output/", keep_alive_seconds=keep_alive)


def wait_status(service: LocalDockerJobService, name: str, wanted: set[str],
                timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        description = service.describe_training_jobs([name])[name]
        if description["TrainingJobStatus"] in wanted:
            return description
        service.wait_for_activity(0.5)
    raise AssertionError(f"{name} never reached {wanted}")


def test_warm_slot_is_reused_with_its_cache(images: dict, tmp_path: Path) -> None:
    service = LocalDockerJobService(work_dir=tmp_path / "jobs")
    try:
        first = trial_request(template(tmp_path, images["trainer"], 60), "warm-a", 0, FAST)
        service.create_training_job(first)
        done = wait_status(service, "warm-a", {COMPLETED, FAILED})
        assert done["TrainingJobStatus"] == COMPLETED
        assert done["WarmPoolStatus"]["Status"] == "Available"
        second = trial_request(template(tmp_path, images["trainer"], 60), "warm-b", 1, FAST)
        service.create_training_job(second)
        wait_status(service, "warm-b", {COMPLETED, FAILED})
        reports = service.read_metrics(["warm-a", "warm-b"])
        before = service.describe_training_jobs(["warm-a"])["warm-a"]["WarmPoolStatus"]
        service.release_warm_pool("warm-b")
        after = service.describe_training_jobs(["warm-b"])["warm-b"]["WarmPoolStatus"]
    finally:
        service.close()
    assert before["Status"] == "Reused" and before["ReusedByJob"] == "warm-b"
    assert [r["cache_hit"] for r in reports["warm-a"]] == [0, 0, 0]
    assert [r["cache_hit"] for r in reports["warm-b"]] == [1, 1, 1], "the cache survives reuse"
    assert after["Status"] == "Terminated"


def test_stopping_job_stays_busy_until_it_exits(images: dict, tmp_path: Path) -> None:
    service = LocalDockerJobService(work_dir=tmp_path / "jobs", stop_grace_seconds=10)
    try:
        slow = {**FAST, "epochs": 60, "epoch_duration": 1.0}
        service.create_training_job(
            trial_request(template(tmp_path, images["trainer"], 0), "stop-a", 0, slow))
        time.sleep(2)
        service.stop_training_job("stop-a")
        status = service.describe_training_jobs(["stop-a"])["stop-a"]["TrainingJobStatus"]
        assert status == STOPPING, "a stopping job still holds its instance"
        final = wait_status(service, "stop-a", {STOPPED, COMPLETED, FAILED}, timeout=30)
    finally:
        service.close()
    assert final["TrainingJobStatus"] == STOPPED


def test_docker_backend_study_with_warm_pool(images: dict, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    code = main(["run", "--benchmark", "synthetic_curves", "--method", "RS", "--backend",
                 "docker", "--warm_pool", "--max_wallclock_time", "20", "--max_num_trials",
                 "6", "--n_workers", "2", "--experiment_tag", "dock",
                 "--results_root", str(tmp_path), "--epochs", "3", "--epoch_duration", "0.1"])
    assert code == 0, capsys.readouterr().err
    folder = tmp_path / "dock" / "synthetic_curves" / "RS" / "0"
    rows = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    trials = {r["trial_id"]: r for r in rows}
    assert len(trials) == 6 and all(r["status"] == "Completed" for r in rows)
    assert all(r["job_name"].startswith("dock-synthetic-curves-rs-0-t") for r in rows)
    warm_starts = [r for r in trials.values() if r["started_on_warm_pool_of"]]
    assert len(warm_starts) >= 3, "after the first n_workers trials, trials reuse warm slots"
    assert all(r["metrics"]["cache_hit"] == 1 for r in warm_starts)
    import docker

    leftovers = docker.from_env().containers.list(all=True, filters={"label": "stbench.service"})
    assert not leftovers, "the experiment's end releases every warm slot"


def test_compose_orchestrator_runs_a_study_in_its_container(compose_services: dict,
                                                            compose_paths: dict) -> None:
    orchestrator = compose_services["orchestrator"]
    logs = orchestrator.logs().decode()
    assert orchestrator.attrs["State"]["ExitCode"] == 0 or orchestrator.wait()["StatusCode"] == 0
    assert "ASHA" in logs and "RS" in logs and "rank" in logs
    tag = compose_paths["results"] / "compose"
    for method in ("ASHA", "RS"):
        meta = json.loads((tag / "synthetic_curves" / method / "0" / "metadata.json").read_text())
        assert meta["status"] == "completed"
    assert (tag / "plots" / "synthetic_curves.png").is_file()


def test_compose_trainer_reads_hyperparameters_and_reports(compose_services: dict,
                                                           compose_paths: dict) -> None:
    trainer = compose_services["trainer"]
    assert trainer.wait()["StatusCode"] == 0, trainer.logs().decode()[-2000:]
    channel = (compose_paths["metrics"] / "compose-trial.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in channel] == [1, 2, 3, 4]
    assert trainer.logs().decode().count("[tune-metric]") == 4


def test_kernel_killed_trial_fails_with_its_reason(images: dict, tmp_path: Path) -> None:
    service = LocalDockerJobService(work_dir=tmp_path / "jobs")
    try:
        slow = {**FAST, "epochs": 60, "epoch_duration": 1.0}
        service.create_training_job(
            trial_request(template(tmp_path, images["trainer"], 0), "oom-a", 0, slow))
        time.sleep(2)
        container = service._jobs["oom-a"].slot.container_id
        # what the kernel's OOM killer does to every process of the job
        kill = service.client.api.exec_create(container, ["sh", "-c", "kill -KILL -1"])
        service.client.api.exec_start(kill["Id"], detach=True)
        final = wait_status(service, "oom-a", {STOPPED, COMPLETED, FAILED}, timeout=30)
    finally:
        service.close()
    assert final["TrainingJobStatus"] == FAILED
    assert "SIGKILL" in final["FailureReason"]


def test_missing_image_is_a_one_line_error_before_anything_runs(
        images: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["run", "--benchmark", "synthetic_curves", "--method", "RS", "--backend",
                 "docker", "--image", "stbench-trainer:does-not-exist",
                 "--results_root", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "stbench-trainer:does-not-exist not found" in err[0] and "make build" in err[0]
    assert not (tmp_path / "r").exists()


def test_orchestrator_image_runs_as_a_training_job(docker_client: Any, images: dict,
                                                   tmp_path: Path) -> None:
    """`docker run IMAGE train`, as SageMaker starts it: spec in, results in checkpoints."""
    from stbench.model.spec import ExperimentSpec

    spec = ExperimentSpec(benchmark="synthetic_curves", method=("ASHA",),
                          experiment_tag="as-job", max_wallclock_time=3,
                          extra_args={"epoch_duration": "0.02"})
    (tmp_path / "input" / "config").mkdir(parents=True)
    (tmp_path / "input" / "config" / "hyperparameters.json").write_text(
        json.dumps(spec.to_hyperparameters()))
    container = docker_client.containers.run(
        images["orchestrator"], ["train"], network_mode="host", detach=True,
        volumes={str(tmp_path): {"bind": "/opt/ml", "mode": "rw"}})
    try:
        assert container.wait(timeout=120)["StatusCode"] == 0, container.logs().decode()[-1500:]
    finally:
        container.remove(force=True)
    meta = tmp_path / "checkpoints" / "as-job" / "synthetic_curves" / "ASHA" / "0" / "metadata.json"
    assert json.loads(meta.read_text())["status"] == "completed"
