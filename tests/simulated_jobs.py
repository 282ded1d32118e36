"""A SageMaker-like job service in memory, for the job backend's tests and bench/scale.py.

It behaves like SageMaker where it matters to the backend's decisions: jobs take time,
stopping takes time and holds the instance, a warm pool waits after a job and is reused by
the next job, and, on request, calls are throttled and creates hit ResourceLimitExceeded.
Each call costs the simulator O(names asked + jobs that end), never O(all jobs), so 2048
concurrent jobs and 100k finished ones stay cheap, and it counts every API call and the
names each one carried, which is what the scale tests and the bench assert and report.

A test double of the job-service port, not a product feature (no user study runs on it):
it lives beside the tests, as `bad_inputs.py` does, and bench/ imports it the same way.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stbench.backends.jobs.job_service import CapacityError, Throttled
from stbench.benchmarks.synthetic_curves import loss_at
from stbench.model.job_statuses import COMPLETED, FAILED, IN_PROGRESS, STOPPED, STOPPING, TERMINAL

STOP_SECONDS = 0.03


@dataclass(slots=True)
class SimJob:
    """What the simulator keeps of a job: not its request, so that 100k jobs stay small
    beside the orchestrator whose memory the bench measures."""

    hyperparameters: dict[str, str]
    keep_alive: bool
    started: float
    epochs: int
    epoch_seconds: float
    status: str = IN_PROGRESS
    ended: float | None = None
    reports_sent: int = 0
    pool: dict[str, Any] | None = None
    fail: bool = False
    end_seen: bool = False  # a describe has shown the caller this job's end


@dataclass
class SimulatedJobService:
    """`epoch_seconds`: (low, high) of each job's seconds per epoch, drawn uniformly per job;
    `poll_seconds`: how long `wait_for_activity` sleeps at most (SageMaker pushes nothing)."""

    metrics_delay_seconds: float = 0.0
    fault_rate: float = 0.0
    fail_jobs: bool = False
    seed: int = 0
    epoch_seconds: tuple[float, float] = (0.01, 0.01)
    poll_seconds: float = 0.005
    jobs: dict[str, SimJob] = field(default_factory=dict)
    available_pools: dict[str, None] = field(default_factory=dict)  # oldest first
    calls: Counter[str] = field(default_factory=Counter)
    names_asked: Counter[str] = field(default_factory=Counter)
    faults: int = 0
    peak_instances: int = 0
    decision_seconds: list[float] = field(default_factory=list)  # seen end -> next create
    service_seconds: float = 0.0  # CPU the simulator itself spent, to subtract from the loop's

    def __post_init__(self) -> None:
        fault_seed, duration_seed = np.random.SeedSequence(self.seed).spawn(2)
        self._fault_rng = np.random.default_rng(fault_seed)
        self._duration_rng = np.random.default_rng(duration_seed)
        self._ends: list[tuple[float, str]] = []  # (when the job ends, name) of busy jobs
        self._busy = 0
        self._seen_ends: deque[float] = deque()  # when ends were shown, not yet answered

    # --- bookkeeping -------------------------------------------------------------------------

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def _call(self, operation: str, names: int = 1, create: bool = False) -> float:
        self.calls[operation] += 1
        self.names_asked[operation] += names
        if self.fault_rate and self._fault_rng.random() < self.fault_rate:
            self.faults += 1
            raise Throttled("ThrottlingException: Rate exceeded")
        if create and self.fault_rate and self._fault_rng.random() < self.fault_rate:
            self.faults += 1
            raise CapacityError("ResourceLimitExceeded: ml.c5.large for training job usage")
        return time.process_time()

    def _spent(self, since: float) -> None:
        self.service_seconds += time.process_time() - since

    def _advance(self, now: float) -> None:
        while self._ends and self._ends[0][0] <= now:
            _, name = heapq.heappop(self._ends)
            job = self.jobs[name]
            if job.status == STOPPING:
                self._end(name, job, STOPPED, now)
            elif job.status == IN_PROGRESS:
                self._end(name, job, FAILED if job.fail else COMPLETED, now)

    def _end(self, name: str, job: SimJob, status: str, now: float) -> None:
        job.status, job.ended = status, now
        self._busy -= 1
        if job.keep_alive:
            job.pool = {"Status": "Available", "ResourceRetainedBillableTimeInSeconds": 0}
            self.available_pools[name] = None

    def instances(self) -> int:
        """Running, stopping and warm-pool instances."""
        return self._busy + len(self.available_pools)

    # --- the job-service port ------------------------------------------------------------------

    def create_training_job(self, request: dict[str, Any]) -> None:
        began = self._call("CreateTrainingJob", create=True)
        name = request["TrainingJobName"]
        assert name not in self.jobs, "job names are unique"
        now = time.monotonic()
        self._advance(now)
        if self._seen_ends:
            self.decision_seconds.append(time.perf_counter() - self._seen_ends.popleft())
        if self.available_pools:
            reused = next(iter(self.available_pools))
            del self.available_pools[reused]
            self.jobs[reused].pool = {"Status": "Reused", "ReusedByJob": name,
                                      "ResourceRetainedBillableTimeInSeconds": 1}
        low, high = self.epoch_seconds
        epoch_seconds = float(self._duration_rng.uniform(low, high)) if high > low else low
        epochs = int(request["HyperParameters"]["epochs"])
        keep_alive = bool(request["ResourceConfig"].get("KeepAlivePeriodInSeconds"))
        self.jobs[name] = SimJob(request["HyperParameters"], keep_alive, now, epochs,
                                 epoch_seconds, fail=self.fail_jobs)
        heapq.heappush(self._ends, (now + epochs * epoch_seconds, name))
        self._busy += 1
        self.peak_instances = max(self.peak_instances, self.instances())
        self._spent(began)

    def describe_training_jobs(self, names: list[str]) -> dict[str, dict[str, Any]]:
        began = self._call("DescribeTrainingJob", len(names))
        self._advance(time.monotonic())
        out = {}
        for name in names:
            job = self.jobs[name]
            out[name] = {"TrainingJobStatus": job.status}
            if job.ended is not None:  # as on SageMaker: billed time shows once a job ended
                out[name]["BillableTimeInSeconds"] = 1
            if job.pool:
                out[name]["WarmPoolStatus"] = dict(job.pool)
            if job.status == FAILED:
                out[name]["FailureReason"] = "exit code 1: simulated"
            if job.status in TERMINAL and not job.end_seen:
                job.end_seen = True
                self._seen_ends.append(time.perf_counter())
        self._spent(began)
        return out

    def read_metrics(self, names: list[str]) -> dict[str, list[dict[str, Any]]]:
        began = self._call("ReadMetrics", len(names))
        now = time.monotonic()
        out = {}
        for name in names:
            job = self.jobs[name]
            until = job.ended or now
            done = min(job.epochs, int((until - job.started) / job.epoch_seconds))
            hps = job.hyperparameters
            new = [{"epoch": e, "loss": loss_at(e, float(hps["x"]), float(hps["log_lr"]),
                                                int(hps["width"])),
                    "st_worker_timestamp": time.time()}
                   for e in range(job.reports_sent + 1, done + 1)]
            job.reports_sent = done
            if job.ended is not None and done == job.epochs:
                job.hyperparameters = {}  # all sent: 100k finished jobs keep none
            if new:
                out[name] = new
        self._spent(began)
        return out

    def stop_training_job(self, name: str) -> None:
        self._call("StopTrainingJob")
        job = self.jobs[name]
        if job.status == IN_PROGRESS:
            job.status = STOPPING
            heapq.heappush(self._ends, (time.monotonic() + STOP_SECONDS, name))

    def release_warm_pool(self, name: str) -> None:
        self._call("UpdateTrainingJob")
        if name in self.available_pools:
            del self.available_pools[name]
            self.jobs[name].pool = {"Status": "Terminated",
                                    "ResourceRetainedBillableTimeInSeconds": 2}

    def warm_pool_status(self, names: list[str]) -> dict[str, dict[str, Any] | None]:
        self._call("DescribeTrainingJob", len(names))
        return {n: dict(self.jobs[n].pool) if self.jobs[n].pool else None for n in names}

    def warm_pool_origins(self, names: list[str], since: float) -> dict[str, str]:
        self._call("ListTrainingJobs")
        return {}  # this experiment's pools are its own: the ledger links them already

    def metrics_complete(self, name: str) -> bool:
        return True  # an ended job's reports are all handed out by the next read

    def job_log(self, name: str) -> list[str]:
        self._call("FilterLogEvents")
        return []

    def wait_for_activity(self, timeout: float) -> None:
        time.sleep(max(0.0, min(timeout, self.poll_seconds)))

    def close(self) -> None:
        pass

