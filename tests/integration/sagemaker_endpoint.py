"""The local SageMaker endpoint as the SageMaker adapter's tests drive it.

Every job state and log line the adapter sees comes from the endpoint running real jobs:
trial jobs of the trainer image whose `ContainerEntrypoint` is a bash script the test writes.
A script waits where the test says with a `Gate` (a loopback TCP port the job's container,
on the host network, reads from until the test opens it), so a test controls when each job
goes on without guessing durations. Each test gets a region of its own: jobs, warm pools,
listings and logs are regional, so no test sees another's jobs, pools or listing pages.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError

from stbench.backends.jobs import sagemaker, sagemaker_checks
from stbench.backends.jobs.job_requests import JobTemplate, trial_request
from stbench.backends.jobs.sagemaker import SageMakerJobService
from stbench.backends.jobs.sagemaker_checks import CheckedSetup
from stbench.cli.main import main
from stbench.emulator import Emulator, EmulatorConfig
from stbench.model.naming import job_name

TRAINER = "stbench-trainer:latest"  # what conftest's `images` fixture builds
ROLE = "arn:aws:iam::123456789012:role/stbench"
BUCKET = "adapter-tests"
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
INSTANCE = "ml.c5.xlarge"  # training quota for 64 jobs at once, warm-pool quota 4
NO_POOL_INSTANCE = "ml.m5.xlarge"  # keeps AWS's default warm-pool quota, 0
ENDED = ("Completed", "Failed", "Stopped")
CONFIG = EmulatorConfig(
    cold_start_seconds=0.2, warm_start_seconds=0.05, log_delay_seconds=1.0,
    stop_grace_seconds=1.0, checkpoint_sync_seconds=30.0,
    quotas={f"{INSTANCE} for training job usage": 100,
            f"{INSTANCE} for training warm pool usage": 4})
TEMPLATE = JobTemplate(
    image=TRAINER, benchmark="synthetic_curves", instance_type=INSTANCE,
    checkpoint_root=f"s3://{BUCKET}/checkpoints", output_root=f"s3://{BUCKET}/output/",
    max_runtime_seconds=600, environment={"STBENCH_METRICS": "stdout"},
)
POOLED = dataclasses.replace(TEMPLATE, keep_alive_seconds=600)
CONFIG_OF_TRIAL = {"x": 0.5, "log_lr": -2.0, "width": 64, "epochs": 3}


@dataclasses.dataclass
class Endpoint:
    """A running endpoint and the regions not handed to a test yet."""

    emulator: Emulator
    regions: Iterator[str]

    def session(self, monkeypatch: pytest.MonkeyPatch) -> boto3.session.Session:
        """A session in a fresh region whose clients all reach this endpoint."""
        for key, value in self.emulator.environment().items():
            monkeypatch.setenv(key, value)
        return boto3.session.Session(region_name=next(self.regions))


@contextmanager
def running_endpoint(config: EmulatorConfig = CONFIG) -> Iterator[Endpoint]:
    """The endpoint with the jobs' bucket; stopped after (every container removed)."""
    regions = botocore.session.get_session().get_available_regions("sagemaker")
    with Emulator(config) as emulator:
        boto3.client("s3", endpoint_url=emulator.endpoint_url, region_name="us-east-1",
                     aws_access_key_id="testing", aws_secret_access_key="testing",
                     ).create_bucket(Bucket=BUCKET)
        yield Endpoint(emulator, iter(sorted(regions)))


def run_in_process(endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch, results: Any,
                   prefix: str, *flags: str, poll_seconds: float | None = None) -> int:
    """`stbench run --backend sagemaker` in this process on the endpoint, in a region of its
    own, with the set-up check replaced by its result (the endpoint's bucket under `prefix`,
    the local trainer image): what is under test is the experiment, not the set-up checks
    (test_sagemaker_checks.py has those). `poll_seconds`: the adapter's poll interval."""
    region = endpoint.session(monkeypatch).region_name
    setup = CheckedSetup(region, "123456789012", ROLE, BUCKET, prefix, TRAINER)
    monkeypatch.setattr(sagemaker_checks, "check_sagemaker_setup", lambda *a, **k: setup)
    monkeypatch.setattr(signal, "signal", lambda *a: None)  # keep pytest's SIGTERM handler
    if poll_seconds is not None:
        real_init = sagemaker.SageMakerJobService.__init__

        def fast_init(self: Any, *args: Any, **kwargs: Any) -> None:
            real_init(self, *args, **{**kwargs, "poll_seconds": poll_seconds})

        monkeypatch.setattr(sagemaker.SageMakerJobService, "__init__", fast_init)
    return main(["run", "--backend", "sagemaker", "--region", region, "--role", ROLE,
                 "--s3_root", f"s3://{BUCKET}/{prefix}", "--image", TRAINER,
                 "--results_root", str(results), *flags])


@pytest.fixture(scope="module")
def endpoint(images: dict[str, str]) -> Iterator[Endpoint]:
    with running_endpoint() as started:
        yield started


@pytest.fixture
def session(endpoint: Endpoint, isolated_aws_env: None,
            monkeypatch: pytest.MonkeyPatch) -> boto3.session.Session:
    return endpoint.session(monkeypatch)


class Gate:
    """Closed until `open()`: a job's `gate.wait` blocks on a read from this port, without
    using CPU, and goes on when the test opens it (or at the test's end)."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0), backlog=512)
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        self.wait = f"read -r _ </dev/tcp/127.0.0.1/{self.port} || true"
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._opened = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, name=f"gate-{self.port}",
                                        daemon=True)
        self._thread.start()

    def open(self) -> None:
        with self._lock:
            self._opened.set()
            for connection in self._held:
                connection.close()
            self._held.clear()

    def close(self) -> None:
        self.open()
        self._closed.set()
        self._thread.join()
        self._server.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._server.accept()
            except TimeoutError:
                continue
            with self._lock:
                if self._opened.is_set():
                    connection.close()
                else:
                    self._held.append(connection)


@pytest.fixture
def gates() -> Iterator[Callable[[], Gate]]:
    """New gates for a test; all opened at its end, so no job waits on past the test."""
    made: list[Gate] = []

    def make() -> Gate:
        made.append(Gate())
        return made[-1]

    yield make
    for gate in made:
        gate.close()


def say(line: str) -> str:
    """The shell command that prints this line to the job's log."""
    return f"echo {shlex.quote(line)}"


def report(**metrics: Any) -> str:
    return "[tune-metric]: " + json.dumps(metrics)


def script_job(name: str, trial_id: int, *commands: str,
               template: JobTemplate = TEMPLATE) -> dict[str, Any]:
    """The request stbench sends for a trial, with the job running these bash commands, one
    ContainerArguments entry each (at most 256 characters apiece), instead of the benchmark."""
    request = trial_request(template, name, trial_id, CONFIG_OF_TRIAL)
    request["AlgorithmSpecification"].update(
        ContainerEntrypoint=["bash", "-c", 'for command; do eval "$command"; done', name],
        ContainerArguments=list(commands) or ["true"])
    return request


def start_trial(service: SageMakerJobService, trial_id: int, *commands: str,
                template: JobTemplate = TEMPLATE) -> str:
    """A trial job created through the adapter, running these bash commands."""
    name = job_name(service.job_base, trial_id)
    service.create_training_job(script_job(name, trial_id, *commands, template=template))
    return name


def service_of(session: boto3.session.Session, base: str, **options: Any) -> SageMakerJobService:
    return SageMakerJobService(session, base, **{"poll_seconds": 0.0, **options})


class CallCounter:
    """API calls the adapter's clients make (one per call, pages included, retries not)."""

    def __init__(self, service: SageMakerJobService):
        self.calls: Counter[str] = Counter()
        for client in (service.sm, service.logs):
            client.meta.events.register("before-call", self._count)

    def _count(self, model: Any, **kwargs: Any) -> None:
        self.calls[model.name] += 1

    def take(self) -> Counter[str]:
        calls, self.calls = self.calls, Counter()
        return calls


def poll(service: SageMakerJobService, names: list[str]) -> tuple[dict, dict]:
    """What the job backend does once per loop: status, then metrics."""
    return service.describe_training_jobs(names), service.read_metrics(names)


# --- what the endpoint says, read through boto3 as any client would ---------------------------


def wait_for(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """`check()` once it is truthy; fails after `timeout` seconds naming `what`."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"waited {timeout:.0f} s for {what}"
        time.sleep(0.1)
    return result


def described(session: boto3.session.Session, name: str) -> dict[str, Any]:
    return session.client("sagemaker").describe_training_job(TrainingJobName=name)


def wait_ended(session: boto3.session.Session, *names: str) -> list[dict[str, Any]]:
    """DescribeTrainingJob of each job once it has ended."""
    sm = session.client("sagemaker")

    def ended(name: str) -> dict[str, Any] | None:
        job = sm.describe_training_job(TrainingJobName=name)
        return job if job["TrainingJobStatus"] in ENDED else None

    return [wait_for(lambda n=name: ended(n), f"{name} to end") for name in names]


def wait_all_ended(session: boto3.session.Session) -> None:
    """Every job of the session's region ended (so none loads the machine after a test)."""
    sm = session.client("sagemaker")

    def none_running() -> bool:
        pages = sm.get_paginator("list_training_jobs").paginate(
            StatusEquals="InProgress", MaxResults=100)
        running = [s for page in pages for s in page["TrainingJobSummaries"]]
        stopping = sm.list_training_jobs(StatusEquals="Stopping", MaxResults=100)
        return not running and not stopping["TrainingJobSummaries"]

    wait_for(none_running, f"the jobs of {session.region_name} to end", timeout=120)


def log_lines(session: boto3.session.Session, name: str, pattern: str = "") -> list[str]:
    """The job's log lines CloudWatch delivered so far."""
    logs = session.client("logs")
    try:
        pages = logs.get_paginator("filter_log_events").paginate(
            logGroupName=LOG_GROUP, logStreamNamePrefix=f"{name}/", filterPattern=pattern)
        events = [event for page in pages for event in page["events"]]
    except ClientError as err:  # nothing logged in this region yet
        assert err.response["Error"]["Code"] == "ResourceNotFoundException"
        return []
    return [e["message"] for e in sorted(events, key=lambda e: e["timestamp"])
            if e["logStreamName"].startswith(f"{name}/")]


def wait_for_lines(session: boto3.session.Session, name: str, count: int,
                   pattern: str = "") -> list[str]:
    return wait_for(lambda: len(lines := log_lines(session, name, pattern)) >= count and lines,
                    f"{count} log lines of {name}")


def reports_delivered(session: boto3.session.Session, names: list[str]) -> Counter[str]:
    """`[tune-metric]` lines CloudWatch delivered so far, per job: one query for all jobs."""
    logs = session.client("logs")
    try:
        pages = logs.get_paginator("filter_log_events").paginate(
            logGroupName=LOG_GROUP, filterPattern='"[tune-metric]"')
        jobs = [event["logStreamName"].partition("/")[0]
                for page in pages for event in page["events"]]
    except ClientError as err:
        assert err.response["Error"]["Code"] == "ResourceNotFoundException"
        jobs = []
    wanted = set(names)
    return Counter(job for job in jobs if job in wanted)


def wait_for_reports(session: boto3.session.Session, names: list[str], count: int) -> None:
    wait_for(lambda: min(reports_delivered(session, names)[n] for n in names) >= count,
             f"{count} reports of each of {len(names)} jobs")


class Listings:
    """The ListTrainingJobs pages the adapter received: (job names, NextToken or None)."""

    def __init__(self, service: SageMakerJobService):
        self.pages: list[tuple[list[str], str | None]] = []
        service.sm.meta.events.register("after-call.sagemaker.ListTrainingJobs", self._record)

    def _record(self, parsed: dict[str, Any], **kwargs: Any) -> None:
        self.pages.append(([s["TrainingJobName"] for s in parsed.get("TrainingJobSummaries", [])],
                           parsed.get("NextToken")))

    def names(self) -> set[str]:
        return {name for found, _ in self.pages for name in found}
