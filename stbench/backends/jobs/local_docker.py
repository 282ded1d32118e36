"""Local Docker adapter: runs `CreateTrainingJob` requests as trainer containers.

A job is the image's entrypoint with `train` executed in an instance, a container kept alive
(warm_slots.py), like SageMaker runs `docker run IMAGE train` on an instance. Exec exits come
from the Docker event stream, so status needs no per-job polling.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from stbench.backends.events import ActivitySignal
from stbench.backends.jobs import opt_ml_layout
from stbench.backends.jobs.channels import prepare_channels
from stbench.backends.jobs.checkpoints import S3Store, store_for
from stbench.backends.jobs.docker_engine import (
    EXPERIMENT_LABEL,
    OR_LOCAL_PROCESSES,
    STUDY_LABEL,
    build_hint,
    connect,
    remove_labelled,
)
from stbench.backends.jobs.job_service import JobDescription, JobRequest
from stbench.backends.jobs.local_instances import LocalJob, describe_job
from stbench.backends.jobs.warm_slots import LOGS_DIR, METRICS_DIR, WarmSlots
from stbench.model.container_contract import (
    WARMPOOL_CACHE_DIR,
    WARMPOOL_CACHE_ENV,
    write_failure,
)
from stbench.model.errors import UserError
from stbench.model.job_statuses import (
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    STOPPED,
    STOPPING,
    WARM_IN_USE,
    WARM_REUSED,
)

TICK_SECONDS = 0.05


class LocalDockerJobService:
    """The job-service port on the local Docker engine."""

    metrics_delay_seconds = 0.0  # the trainer writes every report before its process exits

    def __init__(self, work_dir: Path | None = None, stop_grace_seconds: float = 30.0,
                 client: Any = None, sync_seconds: float = 5.0, study: str | None = None,
                 experiment: str | None = None):
        """`experiment` (its job-name base) labels the containers, so that a resumed
        experiment finds those of an earlier run that was killed."""
        self.client = connect(client, OR_LOCAL_PROCESSES)
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="stbench-jobs-")).resolve()
        self.metrics_dir = self.work_dir / "metrics"
        self.metrics_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir = self.work_dir / "logs"
        self.logs_dir.mkdir(exist_ok=True)
        self.stop_grace_seconds = stop_grace_seconds
        self.sync_seconds = sync_seconds
        self._commands: dict[str, list[str]] = {}
        self.label = f"stbench-{uuid.uuid4().hex[:12]}"
        # every container and volume names its service and study (`docker ps --filter label=...`)
        self.labels = {"stbench.service": self.label, **({STUDY_LABEL: study} if study else {}),
                       **({EXPERIMENT_LABEL: experiment} if experiment else {})}
        self.activity = ActivitySignal()
        self._lock = threading.RLock()
        self._jobs: dict[str, LocalJob] = {}
        self._by_exec: dict[str, str] = {}
        self.slots = WarmSlots(self.client, self.work_dir, self.label, self.labels,
                               self.metrics_dir, self.logs_dir, self._jobs)
        self._closed = threading.Event()
        self._events = self.client.events(decode=True, filters={"event": "exec_die"})
        threading.Thread(target=self._watch_events, daemon=True).start()
        threading.Thread(target=self._tick, daemon=True).start()
        threading.Thread(target=self._sync_checkpoints, daemon=True).start()

    @classmethod
    def probe(cls) -> LocalDockerJobService:
        """A connected service used only for checks; it starts no watcher threads."""
        service = cls.__new__(cls)
        service.client = connect(None, OR_LOCAL_PROCESSES)
        return service

    # --- port ------------------------------------------------------------------------------

    def check_image(self, image: str) -> None:
        from docker.errors import ImageNotFound

        try:
            self.client.images.get(image)
        except ImageNotFound:
            raise UserError(f"image {image} not found; {build_hint(image)}") from None

    def create_training_job(self, request: JobRequest) -> None:
        name = request["TrainingJobName"]
        store = store_for(request["CheckpointConfig"]["S3Uri"])
        with self._lock:
            if name in self._jobs:
                raise UserError(f"training job {name} already exists; job names must be unique")
            slot, reused_from = self.slots.take(request)
            job = LocalJob(request=request, slot=slot, store=store, reused_from=reused_from)
            self._jobs[name] = job
            if reused_from is not None:
                self._jobs[reused_from].pool_ended_at = time.time()
                self._jobs[reused_from].warm_pool = {
                    **(self._jobs[reused_from].warm_pool or {}),
                    "Status": WARM_REUSED, "ReusedByJob": name,
                }
            if job.keep_alive:
                job.warm_pool = {"Status": WARM_IN_USE}
        opt_ml_layout.prepare_instance_folder(slot.folder, request, store)
        try:
            prepare_channels(slot.folder, request, self._s3)
        except Exception as err:  # noqa: BLE001 - as SageMaker fails a job whose data is missing
            write_failure(slot.folder, str(err))
            self._on_exit(name, 1)
            return
        env = {
            **request.get("Environment", {}),
            "TRAINING_JOB_NAME": name,
            "TRAINING_JOB_ARN": f"arn:aws:sagemaker:local:000000000000:training-job/{name}",
            WARMPOOL_CACHE_ENV: WARMPOOL_CACHE_DIR,
            "STBENCH_METRICS_DIR": METRICS_DIR,
        }
        exec_id = self.client.api.exec_create(
            slot.container_id, self._command(slot.image), environment=env
        )["Id"]
        with self._lock:
            job.exec_id = exec_id
            self._by_exec[exec_id] = name
        self.client.api.exec_start(exec_id, detach=True)
        job.started_at = time.time()

    def describe_training_jobs(self, names: list[str]) -> dict[str, JobDescription]:
        with self._lock:
            return {n: describe_job(n, self._jobs[n]) for n in names if n in self._jobs}

    def stop_training_job(self, name: str) -> None:
        with self._lock:
            job = self._jobs[name]
            if job.status != IN_PROGRESS:
                return
            job.status = STOPPING
            job.kill_at = time.time() + self.stop_grace_seconds
        self.slots.signal(job.slot, "TERM")

    def previous_jobs(self) -> dict[str, JobDescription]:
        """An earlier run's containers cannot be taken over (each job is an exec of a process
        that is gone), so they and their volumes are removed, with the instance folders; the
        job names it used are those of its logs and metrics files, all now Stopped."""
        experiment = self.labels.get(EXPERIMENT_LABEL)
        if experiment:
            for item in [*self.client.containers.list(
                    all=True, filters={"label": f"{EXPERIMENT_LABEL}={experiment}"}),
                         *self.client.volumes.list(
                    filters={"label": f"{EXPERIMENT_LABEL}={experiment}"})]:
                if (item.attrs.get("Config", item.attrs).get("Labels") or {}).get(
                        "stbench.service") != self.label:
                    item.remove(force=True)
        for folder in (self.work_dir / "instances").glob("*"):
            if folder not in self.slots.folders():
                shutil.rmtree(folder, ignore_errors=True)
        names = {p.stem for p in self.logs_dir.glob("*.log")}
        names |= {p.stem for p in self.metrics_dir.glob("*.jsonl")}
        return {name: {"TrainingJobStatus": STOPPED} for name in names if name not in self._jobs}

    def release_warm_pool(self, name: str) -> None:
        with self._lock:
            job = self._jobs.get(name)
            if job is None:
                return
            job.request["ResourceConfig"]["KeepAlivePeriodInSeconds"] = 0
            slot = job.slot
            if slot.job is None and slot.last_job == name:
                self.slots.terminate(slot)

    def warm_pool_status(self, names: list[str]) -> dict[str, dict[str, Any] | None]:
        with self._lock:
            return {n: describe_job(n, self._jobs[n]).get("WarmPoolStatus")
                    for n in names if n in self._jobs}

    def warm_pool_origins(self, names: list[str], since: float) -> dict[str, str]:
        """Our own records say it: a local slot is only ever taken by this experiment's jobs."""
        with self._lock:
            return {n: str(self._jobs[n].reused_from) for n in names
                    if n in self._jobs and self._jobs[n].reused_from}

    def read_metrics(self, names: list[str]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for name in names:
            job = self._jobs.get(name)
            if job is None:
                continue
            reports, job.metrics_offset = opt_ml_layout.read_new_reports(
                self.metrics_dir / f"{name}.jsonl", job.metrics_offset
            )
            if reports:
                out[name] = reports
        return out

    def metrics_complete(self, name: str) -> bool:
        """The trainer writes each report before its process exits, and reports are read
        after the status: once a job has ended, `read_metrics` has handed out all of them."""
        return True

    def wait_for_activity(self, timeout: float) -> None:
        self.activity.wait(timeout)

    def close(self) -> None:
        """Stop running jobs and remove every container and volume this service made."""
        with self._lock:
            for job in self._jobs.values():
                if job.status in (IN_PROGRESS, STOPPING):
                    job.status = STOPPED if job.status == STOPPING else FAILED
                    job.failure_reason = job.failure_reason or "ended with the experiment"
                    job.ended_at = time.time()
            self.slots.terminate_all()
            # and what no slot records: a stop signal can land between creating a container
            # and recording its slot
            remove_labelled(self.client, f"stbench.service={self.label}")
        self._closed.set()
        try:
            self._events.close()
        except Exception:  # the stream may already be gone with the engine
            pass

    # --- helpers ---------------------------------------------------------------------------

    def _command(self, image: str) -> list[str]:
        """`docker run IMAGE train` runs the image's entrypoint with the argument `train`;
        its output goes to the job's log file (exec keeps the exit status and signals)."""
        if image not in self._commands:
            config = self.client.images.get(image).attrs.get("Config") or {}
            self._commands[image] = [
                "sh", "-c", f'exec "$@" >>"{LOGS_DIR}/$TRAINING_JOB_NAME.log" 2>&1', "job",
                *(config.get("Entrypoint") or []), "train",
            ]
        return self._commands[image]

    def _s3(self) -> Any:
        """S3 for channels on s3:// (AWS, or the local endpoint through AWS_ENDPOINT_URL)."""
        import boto3

        from stbench.backends.aws import retrying

        return boto3.client("s3", config=retrying())

    def job_log(self, name: str) -> list[str]:
        path = self.logs_dir / f"{name}.log"
        return path.read_text(errors="replace").splitlines() if path.is_file() else []

    def log_tail(self, name: str, lines: int = 20) -> str:
        """The end of a job's output, for failures a user has to read."""
        return opt_ml_layout.tail(self.logs_dir / f"{name}.log", lines)

    # --- background ------------------------------------------------------------------------

    def _watch_events(self) -> None:
        try:
            for event in self._events:
                attributes = event.get("Actor", {}).get("Attributes", {})
                name = self._by_exec.get(attributes.get("execID", ""))
                if name is not None:
                    self._on_exit(name, int(attributes.get("exitCode", -1)))
        except Exception:  # the stream ends when the service closes
            return

    def _on_exit(self, name: str, exit_code: int) -> None:
        job = self._jobs[name]
        if job.ended_at is not None:
            return
        upload_error = ""
        try:  # before the job counts as ended, as SageMaker uploads before it completes
            job.store.upload(job.slot.folder / "checkpoints")
        except Exception as err:  # noqa: BLE001 - any storage error fails the job, visibly
            upload_error = f"uploading checkpoints failed: {type(err).__name__}: {err}"
        with self._lock:
            if job.ended_at is not None:
                return
            job.ended_at = time.time()
            if job.status == STOPPING:
                job.status = STOPPED
            elif exit_code == 0 and not upload_error:
                job.status = COMPLETED
            else:
                job.status = FAILED
                job.failure_reason = upload_error or opt_ml_layout.failure_reason(
                    job.slot.folder, exit_code)
            self.slots.job_ended(name)
        self.activity.notify()

    def _tick(self) -> None:
        """Deadlines (kill after grace, max runtime, keep-alive expiry) and metric arrivals."""
        sizes: dict[str, int] = {}
        while not self._closed.wait(TICK_SECONDS):
            now = time.time()
            changed = False
            with self._lock:
                for name, job in self._jobs.items():
                    if job.status == STOPPING and job.kill_at and now >= job.kill_at:
                        job.kill_at = None
                        self.slots.signal(job.slot, "KILL")
                    elif job.status == IN_PROGRESS and now - job.created_at > job.max_runtime:
                        job.failure_reason = "MaxRuntimeExceeded"
                        self.stop_training_job(name)
                    if job.status in (IN_PROGRESS, STOPPING):
                        size = opt_ml_layout.size_of(self.metrics_dir / f"{name}.jsonl")
                        if size != sizes.get(name, 0):
                            sizes[name], changed = size, True
                self.slots.expire(now)
            if changed:
                self.activity.notify()

    def _sync_checkpoints(self) -> None:
        """Upload running jobs' checkpoints to S3 while they run, as SageMaker does."""
        while not self._closed.wait(self.sync_seconds):
            with self._lock:
                running = [job for job in self._jobs.values()
                           if job.ended_at is None and isinstance(job.store, S3Store)]
            for job in running:
                try:
                    job.store.upload(job.slot.folder / "checkpoints")
                except Exception:  # noqa: BLE001 - retried next round; the final upload reports
                    continue
