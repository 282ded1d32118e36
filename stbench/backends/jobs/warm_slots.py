"""The local Docker adapter's instances ("slots"): containers kept alive between jobs.

A slot is a container of a job's image running `sleep infinity`, with a host folder as
`/opt/ml` and its own warm-pool cache volume. When a job ends with a keep-alive period its slot
stays warm until then, and the next job with the same resource configuration and image takes
it, as SageMaker's warm pools do; otherwise, or at expiry or release, it is removed.
"""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from stbench.backends.gpus import least_busy, visible_gpus
from stbench.backends.jobs.docker_engine import build_hint
from stbench.backends.jobs.job_service import JobRequest
from stbench.backends.jobs.local_instances import LocalJob, Slot, match_key
from stbench.model.container_contract import WARMPOOL_CACHE_DIR
from stbench.model.errors import UserError
from stbench.model.job_statuses import WARM_AVAILABLE, WARM_TERMINATED

METRICS_DIR = "/stbench/metrics"
LOGS_DIR = "/stbench/logs"  # a job's stdout and stderr, what CloudWatch holds on SageMaker


class WarmSlots:
    """Every slot of one job service; the caller holds its lock around each call."""

    def __init__(self, client: Any, work_dir: Path, label: str, labels: dict[str, str],
                 metrics_dir: Path, logs_dir: Path, jobs: dict[str, LocalJob]):
        """`jobs`: the service's records of its jobs (shared, not copied), whose warm pools
        end with their slots."""
        self.client = client
        self.jobs = jobs
        self.work_dir = work_dir
        self.label = label
        self.labels = labels
        self.metrics_dir = metrics_dir
        self.logs_dir = logs_dir
        self.gpus = visible_gpus()  # each slot gets the least busy one
        self.slots: list[Slot] = []

    def take(self, request: JobRequest) -> tuple[Slot, str | None]:
        """A warm slot that fits the request, with the job whose pool it was, else a new one."""
        key = match_key(request)
        image = request["AlgorithmSpecification"]["TrainingImage"]
        now = time.time()
        for slot in self.slots:
            usable = slot.job is None and slot.expires_at is not None and slot.expires_at > now
            # A container is its image: locally a slot serves only jobs of the same image.
            if usable and slot.key == key and slot.image == image:
                slot.job, slot.expires_at = request["TrainingJobName"], None
                return slot, slot.last_job
        return self._new(request, key, image), None

    def _new(self, request: JobRequest, key: str, image: str) -> Slot:
        from docker.errors import ImageNotFound
        from docker.types import DeviceRequest, Mount

        folder = self.work_dir / "instances" / uuid.uuid4().hex[:12]
        folder.mkdir(parents=True)
        volume = f"{self.label}-cache-{folder.name}"
        self.client.volumes.create(volume, labels=self.labels)
        mounts = [
            Mount("/opt/ml", str(folder), type="bind"),
            Mount(WARMPOOL_CACHE_DIR, volume, type="volume"),
            Mount(METRICS_DIR, str(self.metrics_dir), type="bind"),
            Mount(LOGS_DIR, str(self.logs_dir), type="bind"),
        ]
        gpu = least_busy(self.gpus, [s.gpu for s in self.slots])
        devices = [] if gpu is None else [DeviceRequest(device_ids=[gpu],
                                                        capabilities=[["gpu"]])]
        try:
            container = self.client.containers.create(
                image, entrypoint=["sleep", "infinity"], network_mode="host",
                labels=self.labels, mounts=mounts,
                device_requests=devices,
            )
        except ImageNotFound:
            self.client.volumes.get(volume).remove(force=True)
            raise UserError(f"image {image} not found; {build_hint(image)}") from None
        container.start()
        slot = Slot(container.id, image, key, folder, volume, job=request["TrainingJobName"],
                    gpu=gpu)
        self.slots.append(slot)
        return slot

    def job_ended(self, name: str) -> None:
        """Job `name` ended: its slot stays warm for the job's keep-alive, or goes."""
        job = self.jobs[name]
        slot = job.slot
        slot.job = None
        if job.keep_alive > 0 and job.ended_at is not None:
            slot.last_job, slot.expires_at = name, job.ended_at + job.keep_alive
            job.warm_pool = {"Status": WARM_AVAILABLE}
        else:
            self.terminate(slot)

    def expire(self, now: float) -> None:
        """Remove the idle slots whose keep-alive has run out."""
        for slot in list(self.slots):
            if slot.job is None and slot.expires_at and now >= slot.expires_at:
                self.terminate(slot)

    def terminate(self, slot: Slot) -> None:
        """Remove the slot's container, volume and folder; its warm pool, if any, ends."""
        from docker.errors import NotFound

        self.slots.remove(slot)
        if slot.last_job and slot.last_job in self.jobs:
            last = self.jobs[slot.last_job]
            if last.warm_pool and last.warm_pool.get("Status") == WARM_AVAILABLE:
                last.warm_pool["Status"] = WARM_TERMINATED
                last.pool_ended_at = time.time()
        for remove in (
            lambda: self.client.containers.get(slot.container_id).remove(force=True),
            lambda: self.client.volumes.get(slot.volume).remove(force=True),
        ):
            try:
                remove()
            except NotFound:
                pass
        shutil.rmtree(slot.folder, ignore_errors=True)

    def terminate_all(self) -> None:
        for slot in list(self.slots):
            self.terminate(slot)

    def signal(self, slot: Slot, signal_name: str) -> None:
        """Signal every process of the job; PID 1 (`sleep`) ignores it, so the slot lives."""
        exec_id = self.client.api.exec_create(
            slot.container_id, ["sh", "-c", f"kill -{signal_name} -1"]
        )["Id"]
        self.client.api.exec_start(exec_id, detach=True)

    def folders(self) -> set[Path]:
        return {slot.folder for slot in self.slots}
