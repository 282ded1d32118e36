"""`stbench launch --local`: the remote mode rehearsed on this machine's Docker engine.

The same plan, requests and checks as a SageMaker launch, but the orchestrator jobs run
through the local Docker adapter with the engine's socket, so each starts its trainer jobs
as sibling containers. Job checkpoints (the orchestrators' results) sync to S3 at the
endpoint the user names (`--s3_endpoint` or AWS_ENDPOINT_URL_S3; moto in the tests), and a
job ledger in S3 stands in for SageMaker's job listing, so `stbench status`, `results` and
a relaunch read the same S3 data as they would after a remote launch. The launch stays in
the foreground until its jobs end: the jobs live in this process's adapter.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from stbench.backends.aws import check_credentials, retrying
from stbench.backends.jobs.docker_engine import STUDY_LABEL, remove_labelled
from stbench.backends.jobs.job_requests import LOCAL_ROLE
from stbench.backends.jobs.job_service import TERMINAL
from stbench.backends.jobs.sagemaker_checks import CheckedSetup, check_bucket, parse_s3_root
from stbench.model.errors import UserError
from stbench.model.images import LOCAL_ORCHESTRATOR, orchestrator_image_for
from stbench.model.naming import tag_matcher
from stbench.model.spec import ExperimentSpec

LOCAL_ACCOUNT = "000000000000"
LEDGER_FIELDS = ("TrainingJobName", "TrainingJobStatus", "FailureReason", "CreationTime",
                 "TrainingEndTime", "HyperParameters", "CheckpointConfig")


class JobLedger:
    """Local jobs of a tag as S3 objects `<s3_root>/<tag>/local-jobs/<job>.json`: what
    ListTrainingJobs and DescribeTrainingJob say for SageMaker jobs."""

    def __init__(self, s3: Any, s3_root: str, tag: str):
        self.s3 = s3
        self.bucket, prefix = parse_s3_root(s3_root)
        self.prefix = f"{prefix}/{tag}/local-jobs/".lstrip("/")
        self.is_ours = tag_matcher(tag)

    def record(self, description: dict[str, Any]) -> None:
        entry = {k: description[k] for k in LEDGER_FIELDS if description.get(k) is not None}
        self.s3.put_object(Bucket=self.bucket, Key=f"{self.prefix}{entry['TrainingJobName']}.json",
                           Body=json.dumps(entry, default=str).encode())

    def job_statuses(self) -> dict[str, str]:
        return {name: entry["TrainingJobStatus"] for name, entry in self._entries().items()}

    def describe(self, name: str) -> dict[str, Any]:
        body = self.s3.get_object(Bucket=self.bucket, Key=f"{self.prefix}{name}.json")["Body"]
        return json.loads(body.read())

    def _entries(self) -> dict[str, dict[str, Any]]:
        found = {}
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                name = item["Key"][len(self.prefix):].removesuffix(".json")
                if self.is_ours(name):
                    found[name] = self.describe(name)
        return found


class LocalDockerTarget:
    """Launch target for `--local`: orchestrator jobs on the local Docker adapter."""

    def __init__(self, session: boto3.session.Session, s3_root: str | None, tag: str,
                 work_dir: Path | None = None):
        if not s3_root:
            raise UserError("stbench launch --local keeps results and its job ledger in S3: "
                            "pass --s3_root s3://<bucket>/<prefix> (and --s3_endpoint URL)")
        self.session = session
        self.trial_backend = "docker"
        self.region = check_credentials(session)
        self.s3 = session.client("s3", config=retrying())
        self.ledger = JobLedger(self.s3, s3_root, tag)
        self.tag = tag
        self.work_dir = work_dir
        self.service: Any = None
        self.jobs: list[str] = []

    def check(self, spec: ExperimentSpec) -> CheckedSetup:
        from stbench.backends.jobs.local_docker import LocalDockerJobService

        bucket, prefix = parse_s3_root(spec.s3_root)
        LocalDockerJobService.probe().check_image(str(spec.image))
        check_bucket(self.session, self.region, bucket)
        return CheckedSetup(self.region, LOCAL_ACCOUNT, LOCAL_ROLE, bucket, prefix,
                            str(spec.image))

    def orchestrator_image(self, setup: CheckedSetup, override: str | None) -> str:
        from stbench.backends.jobs.local_docker import LocalDockerJobService

        image = override or (orchestrator_image_for(setup.image_uri)
                             if "stbench-trainer" in setup.image_uri else LOCAL_ORCHESTRATOR)
        LocalDockerJobService.probe().check_image(image)
        return image

    def existing_jobs(self, tag: str) -> dict[str, str]:
        return self.ledger.job_statuses()

    def create(self, request: dict[str, Any]) -> None:
        if self.service is None:
            from stbench.backends.jobs.local_docker import LocalDockerJobService

            work_dir = self.work_dir or Path(tempfile.mkdtemp(prefix="stbench-launch-"))
            self.service = LocalDockerJobService(work_dir=work_dir, docker_access=True,
                                                 study=self.tag)
        self.service.create_training_job(request)
        self.jobs.append(request["TrainingJobName"])
        self._record(request["TrainingJobName"])

    def _record(self, name: str) -> None:
        description = self.service.describe_training_jobs([name])[name]
        request = self.service.request_of(name)
        self.ledger.record({**description, "HyperParameters": request["HyperParameters"],
                            "CheckpointConfig": request["CheckpointConfig"]})

    def wait(self, note: Any, poll_seconds: float = 2.0) -> dict[str, str]:
        """Until every job has ended; Ctrl-C stops them. Returns each job's final status."""
        if self.service is None:
            return {}
        seen: dict[str, str] = {}
        note(f"job logs: {self.service.logs_dir}")
        try:
            while True:
                described = self.service.describe_training_jobs(self.jobs)
                for name, job in described.items():
                    status = job["TrainingJobStatus"]
                    if seen.get(name) != status:
                        seen[name] = status
                        self._record(name)
                        reason = f": {job['FailureReason']}" if job.get("FailureReason") else ""
                        note(f"{name}: {status}{reason}")
                        if status == "Failed":
                            note(self.service.log_tail(name))
                if all(status in TERMINAL for status in seen.values()):
                    return seen
                self.service.wait_for_activity(poll_seconds)
        except KeyboardInterrupt:
            note("interrupted: stopping the orchestrator jobs")
            for name in self.jobs:
                self.service.stop_training_job(name)
            deadline = time.time() + self.service.stop_grace_seconds + 5
            described = self.service.describe_training_jobs(self.jobs)
            while time.time() < deadline and not all(
                    job["TrainingJobStatus"] in TERMINAL for job in described.values()):
                time.sleep(0.5)
                described = self.service.describe_training_jobs(self.jobs)
            for name, job in described.items():
                note(f"{name}: {job['TrainingJobStatus']}")
            raise
        finally:
            self.service.close()
            for name in self.jobs:
                try:
                    self._record(name)
                except ClientError:
                    pass


def local_session(s3_root: str | None, s3_endpoint: str | None,
                  region: str | None) -> boto3.session.Session:
    """A session for a local study: its S3 endpoint set for every client made after this."""
    if not s3_root:
        raise UserError("--local needs --s3_root s3://<bucket>/<prefix>, as given to the launch")
    use_endpoint(s3_endpoint)
    return boto3.session.Session(region_name=region)


def use_endpoint(url: str | None) -> None:
    """S3 calls go to the endpoint the user names (botocore reads AWS_ENDPOINT_URL_S3)."""
    if url is None:
        return
    if not url.startswith(("http://", "https://")):
        raise UserError(f"--s3_endpoint {url!r} is not a URL: pass e.g. http://127.0.0.1:5000")
    os.environ["AWS_ENDPOINT_URL_S3"] = url



def cleanup_local(session: boto3.session.Session, s3_root: str, tag: str,
                  confirm: Any) -> int:
    """`stbench cleanup --local`: what a launch killed outright (SIGKILL, a crash) left: its
    containers and volumes (labelled with the study's tag), and ledger entries still
    InProgress, which would make a relaunch skip those experiments."""
    import docker

    client = docker.from_env()
    label = f"{STUDY_LABEL}={tag}"
    containers = client.containers.list(all=True, filters={"label": label})
    volumes = client.volumes.list(filters={"label": label})
    ledger = JobLedger(session.client("s3", config=retrying()), s3_root, tag)
    stale = [name for name, status in ledger.job_statuses().items()
             if status in ("InProgress", "Stopping")]
    if not (containers or volumes or stale):
        print(f"nothing of experiment tag '{tag}' is left on this Docker engine or in the ledger")
        return 0
    print(f"experiment tag '{tag}': {len(containers)} containers, {len(volumes)} volumes, "
          f"{len(stale)} jobs still InProgress in the ledger")
    if not confirm():
        print("nothing done")
        return 1
    # a running orchestrator may start trainers until it is removed itself: several rounds
    removed, left = remove_labelled(client, label, rounds=10)
    if left:
        raise UserError(f"{left} containers and volumes of '{tag}' could not be removed: "
                        "try `stbench cleanup --local` again")
    for name in stale:
        ledger.record({**ledger.describe(name), "TrainingJobStatus": "Stopped",
                       "FailureReason": "stopped by stbench cleanup: its launch had ended"})
    print(f"removed {removed} containers and volumes; {len(stale)} jobs marked Stopped")
    return 0
