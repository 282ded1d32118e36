"""The SageMaker training-job actions of the endpoint, and the account state behind them.

One `TrainingService` is one account: its jobs (per region, names unique per region), its
warm pools (any caller's matching job takes them, as on AWS) and its quotas. Actions
validate from botocore's service model, then change the records under one lock; each job's
life (provisioning, container, uploads) runs in its own thread (lifecycle.py).
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stbench.backends.aws import retrying
from stbench.emulator import capacity
from stbench.emulator.config import TEST_CREDENTIALS, EmulatorConfig
from stbench.emulator.containers import DockerJobs, registry_of
from stbench.emulator.job_records import TrainingJob, WarmPool
from stbench.emulator.lifecycle import JobRun
from stbench.emulator.listing import list_training_jobs
from stbench.emulator.logs import LogDelivery
from stbench.emulator.protocol import AwsError, not_found, validation_error
from stbench.emulator.validation import check_request
from stbench.model.job_statuses import (
    IN_PROGRESS,
    STOPPED,
    STOPPING,
    TERMINAL,
    WARM_AVAILABLE,
    WARM_IN_USE,
    WARM_REUSED,
    WARM_TERMINATED,
)

if TYPE_CHECKING:
    from stbench.emulator.iam_gate import Authorizer
    from stbench.emulator.iam_policy import Request

log = logging.getLogger(__name__)
TICK_SECONDS = 0.1
ACTIONS = ("CreateTrainingJob", "DescribeTrainingJob", "ListTrainingJobs", "StopTrainingJob",
           "UpdateTrainingJob")


class TrainingService:
    def __init__(self, config: EmulatorConfig, docker: DockerJobs, logs: LogDelivery,
                 endpoint_url: str):
        self.config = config
        self.docker = docker
        self.logs = logs
        self.endpoint_url = endpoint_url
        self.work_dir = Path(config.work_dir or tempfile.mkdtemp(prefix="stbench-emulator-"))
        self._s3: dict[str, Any] = {}
        self.iam: Authorizer | None = None  # set when IAM is enforced (iam_gate.py)
        self._role_s3: dict[str, Any] = {}
        self.lock = threading.RLock()
        self.jobs: dict[tuple[str, str], TrainingJob] = {}
        self.pools: list[WarmPool] = []
        self.stop_events: dict[str, threading.Event] = {}
        self.runs: list[threading.Thread] = []
        self.closed = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="emulator-ticker", daemon=True)
        self._ticker.start()

    def handle(self, action: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        handlers: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
            "CreateTrainingJob": self.create, "DescribeTrainingJob": self.describe,
            "ListTrainingJobs": self.list, "StopTrainingJob": self.stop,
            "UpdateTrainingJob": self.update,
        }
        check_request("sagemaker", action, body)
        return handlers[action](region, body)

    # --- actions ---------------------------------------------------------------------------

    def create(self, region: str, body: dict[str, Any]) -> dict[str, Any]:
        self._check_supported(body)
        image = body["AlgorithmSpecification"]["TrainingImage"]
        if not self.docker.image_exists(image):
            where = "registry " + (registry_of(image) or "docker.io")
            raise validation_error(
                f"Cannot find the requested image: {image}. It is neither in the local Docker "
                f"engine nor in {where}: build it, or push it to a registry on 127.0.0.1.")
        name = body["TrainingJobName"]
        with self.lock:
            if (region, name) in self.jobs:
                raise AwsError("ResourceInUse", (
                    "Training job names must be unique within an AWS account and region, and "
                    f"a training job with this name already exists "
                    f"({self.jobs[(region, name)].arn})"))
            job = TrainingJob(name=name, region=region, request=body)
            now = time.time()
            pools = self._pools_of(region)
            pool = capacity.find_pool(pools, job, now)
            capacity.check_training_quota(self.config, self._jobs_of(region), pools, job,
                                          takes_pool=pool is not None)
            if pool is not None:
                previous = self.jobs[(region, pool.owner)]
                previous.pool_status, previous.reused_by, previous.pool_ended = (
                    WARM_REUSED, name, now)
                pool.owner, pool.expires_at = name, None
                job.pool, job.pool_status = pool, WARM_IN_USE
            self.jobs[(region, name)] = job
            self.stop_events[job.arn] = threading.Event()
        run = JobRun(self, job)
        with self.lock:
            self.runs.append(run)
        run.start()
        return {"TrainingJobArn": job.arn}

    def describe(self, region: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return self._job(region, body["TrainingJobName"]).describe(time.time())

    def list(self, region: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return list_training_jobs(self._jobs_of(region), body, time.time())

    def stop(self, region: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            job = self._job(region, body["TrainingJobName"])
            if job.status != IN_PROGRESS:
                raise validation_error("The request was rejected because the training job is "
                                       f"in status {job.status}.")
            self.request_stop(job, STOPPED)
        return {}

    def update(self, region: str, body: dict[str, Any]) -> dict[str, Any]:
        """Only ResourceConfig.KeepAlivePeriodInSeconds; profiler settings are accepted and
        ignored (the endpoint has no Debugger)."""
        with self.lock:
            job = self._job(region, body["TrainingJobName"])
            keep_alive = (body.get("ResourceConfig") or {}).get("KeepAlivePeriodInSeconds")
            if keep_alive is not None:
                self._update_keep_alive(job, int(keep_alive))
            return {"TrainingJobArn": job.arn}

    # --- for the lifecycle -----------------------------------------------------------------

    def request_stop(self, job: TrainingJob, reason: str) -> None:
        """Stopping now; the job's thread sends SIGTERM, then SIGKILL after the grace."""
        with self.lock:
            if job.status != IN_PROGRESS:
                return
            job.stop_reason = reason
            job.advance(STOPPING, "Stopping the training job", STOPPING)
            self.stop_events[job.arn].set()

    def progress(self, job: TrainingJob, secondary: str, message: str) -> bool:
        """Move to the next secondary status; False when the job is stopping instead."""
        with self.lock:
            if job.status != IN_PROGRESS:
                return False
            job.advance(secondary, message)
            return True

    def launched(self, job: TrainingJob) -> None:
        with self.lock:  # a retried job keeps its first start: billing and runtime go on
            job.started = job.started or time.time()

    def fail_instance(self, region: str, name: str) -> None:
        """A test hook, not an AWS action: the running job's instance fails (its container is
        killed), which SageMaker reports as an InternalServerError: the job is retried on a
        new instance while its RetryStrategy allows, else it fails."""
        with self.lock:
            job = self._job(region, name)
            if job.status != IN_PROGRESS:
                raise validation_error(f"training job {name} is {job.status}, not InProgress")
            job.instance_lost = True

    def restart(self, job: TrainingJob) -> bool:
        """After an internal error: True (and SecondaryStatus Starting, as AWS documents for
        RetryStrategy) when a retry is left and the job was not asked to stop."""
        with self.lock:
            job.instance_lost = False
            if job.status != IN_PROGRESS or job.retries >= job.max_retries:
                return False
            job.retries += 1
            job.advance("Starting", f"Restarting the training job after an internal error "
                        f"(retry {job.retries} of {job.max_retries})")
            return True

    def finish(self, job: TrainingJob, status: str, secondary: str, message: str,
               volume: str | None, reason: str | None = None) -> None:
        """The job's end, and what becomes of its instances: a pool while the warm-pool quota
        has room (or the pool it ran on, kept), else released."""
        drop: list[str] = []
        with self.lock:
            job.ended = time.time()
            job.failure_reason = reason[:1024] if reason else None
            job.advance(secondary, message, status)
            retain = job.keep_alive > 0 and job.started is not None
            pool = job.pool
            if pool is not None and retain:
                pool.owner, pool.expires_at = job.name, job.ended + job.keep_alive
                job.pool_status = WARM_AVAILABLE
            elif pool is not None:
                job.pool_status, job.pool_ended = WARM_TERMINATED, job.ended
                self.pools.remove(pool)
                drop.append(pool.volume)
            elif (retain and volume is not None
                  and capacity.warm_pool_has_room(self.config, self._pools_of(job.region), job)):
                job.pool = WarmPool(job.match_key, job.instance_type, job.instance_count,
                                    volume, job.name, job.region, job.ended + job.keep_alive)
                self.pools.append(job.pool)
                job.pool_status = WARM_AVAILABLE
            elif volume is not None:
                drop.append(volume)
            self.stop_events.pop(job.arn, None)
            self._role_s3.pop(job.arn, None)
        for name in drop:
            self.docker.remove_volume(name)

    def s3(self, region: str) -> Any:
        """An S3 client of this endpoint (its moto part), for checkpoints and models."""
        with self.lock:
            if region not in self._s3:
                import boto3

                self._s3[region] = boto3.client(
                    "s3", endpoint_url=self.endpoint_url, region_name=region,
                    aws_access_key_id=TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                    aws_secret_access_key=TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                    config=retrying())
            return self._s3[region]

    def credentials_for(self, job: TrainingJob) -> dict[str, str]:
        """What the job's containers and SageMaker's own calls for it use: temporary
        credentials of its RoleArn, or (IAM not enforced, or no such role here) the
        endpoint's test credentials, which are root."""
        role = str(job.request.get("RoleArn", ""))
        found = self.iam.role_credentials(role, job.region) if self.iam and role else None
        return found or dict(TEST_CREDENTIALS)

    def job_s3(self, job: TrainingJob) -> Any:
        """An S3 client as the job's role: channels, checkpoints and the model go through
        the endpoint's IAM as SageMaker's calls go through AWS's."""
        if self.iam is None:
            return self.s3(job.region)
        with self.lock:
            if job.arn not in self._role_s3:
                import boto3

                credentials = self.credentials_for(job)
                self._role_s3[job.arn] = boto3.client(
                    "s3", endpoint_url=self.endpoint_url, region_name=job.region,
                    aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
                    aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
                    aws_session_token=credentials.get("AWS_SESSION_TOKEN"), config=retrying())
            return self._role_s3[job.arn]

    def role_denial(self, job: TrainingJob, requests: list[Request]) -> str | None:
        """AWS's message when the job's role may not make one of these requests."""
        role = str(job.request.get("RoleArn", ""))
        identity = self.iam.role(role) if self.iam and role else None
        return self.iam.denial(identity, requests) if self.iam and identity else None

    def close(self, timeout: float = 15.0) -> None:
        """Stop every job's thread (they remove their containers), waiting up to `timeout`."""
        self.closed.set()
        with self.lock:
            for event in self.stop_events.values():
                event.set()
            runs = list(self.runs)
        deadline = time.time() + timeout
        for run in runs:
            run.join(max(0.0, deadline - time.time()))

    # --- internals -------------------------------------------------------------------------

    def _check_supported(self, body: dict[str, Any]) -> None:
        """What the endpoint needs beyond the model's constraints, each a ValidationException."""
        algorithm = body.get("AlgorithmSpecification") or {}
        if not algorithm.get("TrainingImage"):
            raise validation_error("AlgorithmSpecification.TrainingImage is required: the "
                                   "local endpoint runs container images, not AlgorithmName")
        resources = body.get("ResourceConfig") or {}
        if not resources.get("InstanceType"):
            raise validation_error("ResourceConfig.InstanceType is required")
        if resources.get("InstanceGroups") or int(resources.get("InstanceCount", 1)) != 1:
            raise validation_error("the local endpoint runs single-instance jobs: "
                                   "ResourceConfig.InstanceCount must be 1")
        uris = [body["OutputDataConfig"]["S3OutputPath"],
                (body.get("CheckpointConfig") or {}).get("S3Uri", "s3://x"),
                *(((channel.get("DataSource") or {}).get("S3DataSource") or {}).get(
                    "S3Uri", "s3://x") for channel in body.get("InputDataConfig") or [])]
        for uri in uris:
            if not uri.startswith("s3://"):
                raise validation_error(f"{uri}: the local endpoint takes s3:// URIs only")

    def _update_keep_alive(self, job: TrainingJob, keep_alive: int) -> None:
        if int(job.resources.get("KeepAlivePeriodInSeconds", 0)) <= 0:
            raise validation_error(
                f"Training job {job.name} was not created with a warm pool "
                "(ResourceConfig.KeepAlivePeriodInSeconds); its warm pool cannot be updated.")
        if job.status not in TERMINAL:
            job.keep_alive = keep_alive  # applies when the job ends
            return
        if job.pool_status != WARM_AVAILABLE or job.pool is None:
            state = job.pool_status or "not retained"
            raise validation_error(f"The warm pool of training job {job.name} is {state}: "
                                   "there is no warm pool to update.")
        job.keep_alive = keep_alive
        job.pool.expires_at = (job.ended or time.time()) + keep_alive
        if keep_alive == 0 or job.pool.expires_at <= time.time():
            self._terminate(job.pool, time.time())

    def _terminate(self, pool: WarmPool, when: float) -> None:
        owner = next(job for job in self.jobs.values()
                     if job.name == pool.owner and job.pool is pool)
        owner.pool_status, owner.pool_ended = WARM_TERMINATED, when
        self.pools.remove(pool)
        threading.Thread(target=self.docker.remove_volume, args=(pool.volume,),
                         daemon=True).start()

    def _job(self, region: str, name: str) -> TrainingJob:
        job = self.jobs.get((region, name))
        if job is None:
            raise not_found(name)
        return job

    def _jobs_of(self, region: str) -> list[TrainingJob]:
        return [job for (where, _), job in self.jobs.items() if where == region]

    def _pools_of(self, region: str) -> list[WarmPool]:
        return [pool for pool in self.pools if pool.region == region]

    def _tick(self) -> None:
        """Deliver due log lines; end pools whose keep-alive ran out."""
        while not self.closed.wait(TICK_SECONDS):
            try:
                self.logs.deliver_due()
                now = time.time()
                with self.lock:
                    for pool in list(self.pools):
                        if pool.expires_at is not None and pool.expires_at <= now:
                            self._terminate(pool, pool.expires_at)
            except Exception:  # noqa: BLE001 - the ticker must outlive any one failure
                log.exception("emulator ticker")
