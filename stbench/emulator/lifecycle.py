"""One training job's life, as SageMaker runs it, in a thread of its own.

Starting (provisioning: the cold or warm start time) → Downloading (the image is pulled if
it is only in a local registry; `/opt/ml/input/config` is written, `/opt/ml/checkpoints`
restored from CheckpointConfig.S3Uri and each InputDataConfig channel copied from S3 into
`/opt/ml/input/data/<channel>`, File mode) → Training (`IMAGE train`; output to CloudWatch Logs;
checkpoints uploaded every `checkpoint_sync_seconds`) → Uploading (checkpoints, then
`/opt/ml/model` as `<S3OutputPath>/<job>/output/model.tar.gz`) → Completed, Failed or, after
StopTrainingJob (SIGTERM, SIGKILL after the grace), Stopped. TrainingStartTime is when the
instance is ready, so BillableTimeInSeconds = TrainingEndTime - TrainingStartTime.
"""

from __future__ import annotations

import io
import logging
import shutil
import tarfile
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from stbench.backends.jobs import opt_ml_layout
from stbench.backends.jobs.channels import ChannelError, prepare_channels
from stbench.backends.jobs.checkpoints import CheckpointStore, store_for
from stbench.backends.jobs.closing import STOP_GRACE_ENV
from stbench.emulator.config import EmulatorConfig
from stbench.emulator.containers import DockerJobs, ImageUnavailable
from stbench.emulator.iam_policy import Request
from stbench.emulator.iam_requests import image_repository_arn, log_group_arn
from stbench.emulator.job_records import ACCOUNT_ID, TrainingJob
from stbench.emulator.logs import LOG_GROUP, LogDelivery
from stbench.model.container_contract import WARMPOOL_CACHE_DIR, WARMPOOL_CACHE_ENV
from stbench.model.job_statuses import COMPLETED, FAILED, STOPPED, STOPPING

log = logging.getLogger(__name__)
WATCH_SECONDS = 0.1
# what a job whose instance failed (and that has no retry left) reports; AWS does not document
# the wording beyond RetryStrategy's "fails due to an InternalServerError"
INTERNAL_ERROR = "InternalServerError: the training job's instance failed"


class JobHost(Protocol):
    """What a job's life needs of the service that owns the job (service.TrainingService):
    its settings and engines, and the steps that change the job's recorded status under the
    service's lock."""

    config: EmulatorConfig
    docker: DockerJobs
    logs: LogDelivery
    endpoint_url: str
    work_dir: Path
    closed: threading.Event
    stop_events: dict[str, threading.Event]

    def launched(self, job: TrainingJob) -> None: ...

    def progress(self, job: TrainingJob, secondary: str, message: str) -> bool: ...

    def restart(self, job: TrainingJob) -> bool: ...

    def request_stop(self, job: TrainingJob, reason: str) -> None: ...

    def finish(self, job: TrainingJob, status: str, secondary: str, message: str,
               volume: str | None, reason: str | None = None) -> None: ...

    def job_s3(self, job: TrainingJob) -> Any: ...

    def credentials_for(self, job: TrainingJob) -> dict[str, str]: ...

    def role_denial(self, job: TrainingJob, requests: list[Request]) -> str | None: ...


class NoCheckpoints:
    """A job without CheckpointConfig: nothing to restore or upload."""

    def restore(self, into: Path) -> None:
        pass

    def upload(self, source: Path) -> None:
        pass


class JobRun(threading.Thread):
    def __init__(self, service: JobHost, job: TrainingJob):
        super().__init__(name=f"job-{job.name}", daemon=True)
        self.service = service
        self.job = job
        self.stopped = service.stop_events[job.arn]
        self.folder = Path(service.work_dir) / job.region / job.name
        self.volume: str | None = job.pool.volume if job.pool else None

    def run(self) -> None:
        try:
            self._run()
        except Exception as err:  # noqa: BLE001 - a bug of ours still ends the job visibly
            if self.service.closed.is_set():
                return
            log.exception("training job %s", self.job.name)
            self._end(FAILED, f"InternalServerError: {type(err).__name__}: {err}")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self) -> None:
        while not self._attempt():  # an internal error with a retry left: a new instance
            shutil.rmtree(self.folder, ignore_errors=True)

    def _attempt(self) -> bool:
        """One instance's part of the job: True once the job ended, False to retry it."""
        config, job = self.service.config, self.job
        provision = config.warm_start_seconds if job.pool else config.cold_start_seconds
        if self.stopped.wait(provision):
            self._end(STOPPED, None)  # before the instance was up: no pool either
            return True
        self.service.launched(job)
        if not self.service.progress(job, "Downloading", "Downloading input data"):
            self._end(STOPPED, None)
            return True
        docker = self.service.docker
        image = job.request["AlgorithmSpecification"]["TrainingImage"]
        try:
            if self.volume is None:
                self.volume = docker.create_volume(job.engine_name)
            if denied := self._role_denial(pull_requests(self.service, job, image)):
                self._end(FAILED, f"ClientError: Cannot pull algorithm container {image}: "
                                  f"denied: {denied}")
                return True
            docker.ensure_image(image)
            store = self._checkpoint_store()
            self.folder.mkdir(parents=True, exist_ok=True)
            opt_ml_layout.prepare_instance_folder(
                self.folder, {**job.request, "HyperParameters": job.request.get(
                    "HyperParameters") or {}}, store)
            prepare_channels(self.folder, job.request, lambda: self.service.job_s3(job))
        except ChannelError as err:
            self._end(FAILED, str(err))
            return True
        except ImageUnavailable as err:
            self._end(FAILED, f"ClientError: {err}")
            return True
        except Exception as err:  # noqa: BLE001 - S3 errors (no bucket, ...) are the caller's
            self._end(FAILED, f"ClientError: preparing the job failed: {err}")
            return True
        if self.service.closed.is_set():
            return True
        if denied := self._role_denial(log_requests(job)):
            self._end(FAILED, f"ClientError: Cannot write the job's logs to CloudWatch Logs: "
                              f"{denied}")
            return True
        if not self.service.progress(job, "Training",
                                     "Training image download completed. Training in progress."):
            self._end(STOPPED, None)
            return True
        exit_code = self._train(store)
        if self.service.closed.is_set():
            return True
        if job.instance_lost:  # the instance is gone: nothing more is uploaded from it
            if self.service.restart(job):
                return False
            if job.status == STOPPING:
                self._end(STOPPED, None)
            else:
                self._end(FAILED, INTERNAL_ERROR)
            return True
        stopping = job.status == STOPPING
        if not stopping:
            self.service.progress(job, "Uploading", "Uploading generated training model")
        errors = self._upload(store, exit_code == 0 or stopping)
        if job.status == STOPPING:
            self._end(STOPPED, None)
        elif exit_code == 0 and not errors:
            self._end(COMPLETED, None)
        else:
            self._end(FAILED, opt_ml_layout.failure_reason(self.folder, exit_code) if exit_code
                      else errors[0])
        return True

    def _train(self, store: CheckpointStore) -> int:
        """Run the container to its end; stop it when asked or past MaxRuntimeInSeconds."""
        config, job, docker = self.service.config, self.job, self.service.docker
        container = docker.start(job.engine_name, job.request["AlgorithmSpecification"],
                                 self.folder, str(self.volume), self._environment())
        stream = f"{job.name}/algo-1-{int(time.time())}"
        pump = threading.Thread(target=self._pump_logs, args=(container, stream),
                                name=f"logs-{job.name}", daemon=True)
        pump.start()
        kill_at: float | None = None
        next_sync = time.time() + config.checkpoint_sync_seconds
        while pump.is_alive():
            pump.join(WATCH_SECONDS)
            now = time.time()
            if self.service.closed.is_set():
                docker.remove(container)
                return -1
            if job.instance_lost and kill_at != float("inf"):
                docker.signal(container, "SIGKILL")  # the instance failed: no grace
                kill_at = float("inf")
            if kill_at is None and job.started and now - job.started > job.max_runtime:
                self.service.request_stop(job, "MaxRuntimeExceeded")
            if kill_at is None and self.stopped.is_set():
                docker.signal(container, "SIGTERM")
                kill_at = now + config.stop_grace_seconds
            elif kill_at is not None and now >= kill_at:
                docker.signal(container, "SIGKILL")
                kill_at = float("inf")
            if now >= next_sync:
                next_sync = now + config.checkpoint_sync_seconds
                self._sync(store)
        exit_code = docker.exit_code(container)
        docker.remove(container)
        return exit_code

    def _pump_logs(self, container: Any, stream: str) -> None:
        try:
            for timestamp_ms, line in self.service.docker.log_lines(container):
                self.service.logs.add(self.job.region, stream, timestamp_ms, line)
        except Exception:  # noqa: BLE001 - the container went away (endpoint closing)
            if not self.service.closed.is_set():
                log.exception("log stream of %s", self.job.name)

    def _environment(self) -> dict[str, str]:
        """The request's Environment and SageMaker's variables, the job's role's temporary
        credentials (as the instance's role gives them on AWS), this endpoint's URL, and its
        stop grace (so a launched orchestrator's close fits a shortened one)."""
        job = self.job
        env = {"AWS_ENDPOINT_URL": self.service.endpoint_url,
               **self.service.credentials_for(job),
               "AWS_DEFAULT_REGION": job.region, "AWS_REGION": job.region,
               "AWS_EC2_METADATA_DISABLED": "true",
               **(job.request.get("Environment") or {}),
               "TRAINING_JOB_NAME": job.name, "TRAINING_JOB_ARN": job.arn,
               # not AWS's: its grace is 120 s, which stbench assumes where this is unset
               STOP_GRACE_ENV: f"{self.service.config.stop_grace_seconds:g}"}
        if job.keep_alive > 0 or job.pool is not None:
            env[WARMPOOL_CACHE_ENV] = WARMPOOL_CACHE_DIR
        return env

    def _checkpoint_store(self) -> CheckpointStore:
        uri = (self.job.request.get("CheckpointConfig") or {}).get("S3Uri")
        return store_for(uri, self.service.job_s3(self.job)) if uri else NoCheckpoints()

    def _sync(self, store: CheckpointStore) -> None:
        try:
            store.upload(self.folder / "checkpoints")
        except Exception:  # noqa: BLE001 - retried at the next period; the last upload reports
            log.warning("checkpoint upload of %s failed; retrying", self.job.name)

    def _upload(self, store: CheckpointStore, with_model: bool) -> list[str]:
        """Checkpoints, then the model archive: errors as FailureReasons, in that order."""
        errors = []
        try:
            store.upload(self.folder / "checkpoints")
        except Exception as err:  # noqa: BLE001
            errors.append(f"ClientError: uploading checkpoints failed: {err}")
        if with_model and not errors:
            try:
                self._upload_model()
            except Exception as err:  # noqa: BLE001
                errors.append(f"ClientError: uploading the model failed: {err}")
        return errors

    def _upload_model(self) -> None:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            model = self.folder / "model"
            for path in sorted(model.rglob("*")) if model.is_dir() else []:
                archive.add(path, arcname=path.relative_to(model).as_posix(), recursive=False)
        bucket, _, key = self.job.model_uri.removeprefix("s3://").partition("/")
        self.service.job_s3(self.job).put_object(Bucket=bucket, Key=key,
                                                 Body=buffer.getvalue())

    def _role_denial(self, requests: list[Request]) -> str | None:
        return self.service.role_denial(self.job, requests) if requests else None

    def _end(self, status: str, reason: str | None) -> None:
        job = self.job
        if status == STOPPED:
            secondary = job.stop_reason or STOPPED
            message = ("Training job stopped: MaxRuntimeInSeconds exceeded"
                       if secondary != STOPPED else "Training job stopped")
        elif status == COMPLETED:
            secondary, message = COMPLETED, "Training job completed"
        else:
            secondary, message = FAILED, f"Training job failed: {(reason or '')[:200]}"
        self.service.finish(job, status, secondary, message, self.volume, reason)


def pull_requests(service: JobHost, job: TrainingJob, image: str) -> list[Request]:
    """What pulling an ECR image asks of the role (ECR's docs for SageMaker: a token, then
    the image manifest and its layers); nothing for an image that is not in ECR."""
    registries = getattr(service.docker, "registry_auth", {})
    repository = image_repository_arn(image, job.region, ACCOUNT_ID, registries)
    if repository is None:
        return []
    return [Request("ecr:GetAuthorizationToken", "*"),
            Request("ecr:BatchGetImage", repository),
            Request("ecr:GetDownloadUrlForLayer", repository)]


def log_requests(job: TrainingJob) -> list[Request]:
    """SageMaker's log writes as the role: a stream in /aws/sagemaker/TrainingJobs, then its
    events."""
    group = log_group_arn(job.region, ACCOUNT_ID, LOG_GROUP)
    stream = f"{group}:log-stream:{job.name}/algo-1-{int(time.time())}"
    return [Request("logs:CreateLogStream", group), Request("logs:PutLogEvents", stream)]
