"""`stbench cleanup`: stop a study's SageMaker jobs and release its warm pools.

A study cut off from outside (laptop closed, orchestrator killed) can leave jobs running and
warm pools billed until their keep-alive ends. Calls: one paginated `ListTrainingJobs`, one
`StopTrainingJob` per running job, one `UpdateTrainingJob` per Available pool and, only when
no summary carries `WarmPoolStatus` (moto), one `DescribeTrainingJob` per trial that ended
within the longest keep-alive, at most `MAX_DESCRIBES`. Names must be what `experiment_base`
gives for the tag, so a study whose tag starts with this one (`study-2`) is never touched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from stbench.backends.aws import (
    BAD_CREDENTIALS,
    CREDENTIAL_ERRORS,
    CREDENTIALS_FIX,
    DENIED,
    THROTTLING_CODES,
    error_code,
    error_message,
    one_line,
    retrying,
)
from stbench.backends.jobs.sagemaker import NO_POOL_HINTS
from stbench.launch.study_jobs import study_matcher
from stbench.model.errors import UserError
from stbench.model.job_statuses import IN_PROGRESS, STOPPING, TERMINAL, WARM_AVAILABLE
from stbench.model.naming import name_key

KEEP_ALIVE_MAX_SECONDS = 21600  # the API's maximum KeepAlivePeriodInSeconds
MAX_DESCRIBES = 100


@dataclass
class Plan:
    total: int = 0  # jobs of the tag
    stop: list[str] = field(default_factory=list)  # InProgress, orchestrators first
    release: list[str] = field(default_factory=list)  # warm pool Available
    stopping: int = 0  # already Stopping: their pools appear later
    unchecked: int = 0  # ended trials whose pool was not looked at (over MAX_DESCRIBES)


def sagemaker_client(session: boto3.session.Session) -> Any:
    return session.client("sagemaker", config=retrying())


@contextmanager
def aws_errors(action: str) -> Iterator[None]:
    """Any AWS failure as one line naming the fix; cleanup is safe to rerun."""
    try:
        yield
    except (ClientError, BotoCoreError) as err:
        code = error_code(err) if isinstance(err, ClientError) else type(err).__name__
        text = one_line(error_message(err) if isinstance(err, ClientError) else err)
        fix = ("rerun `stbench cleanup`" if code in THROTTLING_CODES else
               f"{CREDENTIALS_FIX}, or `aws sso login`"
               if code in BAD_CREDENTIALS or isinstance(err, CREDENTIAL_ERRORS)
               else f"grant {action} (docs/iam.md)" if code in DENIED
               else "check --region and your network" if isinstance(err, BotoCoreError)
               else "fix that and rerun `stbench cleanup`")
        raise UserError(f"{action} failed ({code}: {text}): {fix}") from err


def describe(sm: Any, name: str) -> dict[str, Any]:
    with aws_errors("sagemaker:DescribeTrainingJob"):
        return sm.describe_training_job(TrainingJobName=name)


def plan_cleanup(sm: Any, tag: str) -> Plan:
    """What to stop and release; reads only."""
    matches = study_matcher(tag, lambda name: describe(sm, name))
    with aws_errors("sagemaker:ListTrainingJobs"):
        pages = sm.get_paginator("list_training_jobs").paginate(NameContains=name_key(tag),
                                                               MaxResults=100)
        jobs = [s for page in pages for s in page["TrainingJobSummaries"]
                if matches(s["TrainingJobName"])]
    running = [s["TrainingJobName"] for s in jobs if s["TrainingJobStatus"] == IN_PROGRESS]
    # orchestrators (`-oNN`) first: once stopped they start no trials (and stop their own)
    plan = Plan(len(jobs), sorted(running, key=lambda name: (name[-3] != "o", name)))
    plan.stopping = sum(s["TrainingJobStatus"] == STOPPING for s in jobs)
    plan.release = [s["TrainingJobName"] for s in jobs
                    if s.get("WarmPoolStatus", {}).get("Status") == WARM_AVAILABLE]
    if any("WarmPoolStatus" in s for s in jobs):
        return plan
    since = time.time() - KEEP_ALIVE_MAX_SECONDS  # a pool never outlives its job's end longer
    ended = sorted((s for s in jobs if s["TrainingJobStatus"] in TERMINAL
                    and s["TrainingJobName"][-3] != "o"  # orchestrators keep no pool
                    and s["LastModifiedTime"].timestamp() >= since),
                   key=lambda s: s["LastModifiedTime"], reverse=True)
    plan.unchecked = max(0, len(ended) - MAX_DESCRIBES)
    for summary in ended[:MAX_DESCRIBES]:
        job = describe(sm, summary["TrainingJobName"])
        if job.get("WarmPoolStatus", {}).get("Status") == WARM_AVAILABLE:
            plan.release.append(job["TrainingJobName"])
    return plan


def carry_out(sm: Any, plan: Plan, note: Callable[[str], None] = print) -> tuple[int, int]:
    """Stop, then release; a job that ended meanwhile or a pool already gone is no error."""
    stopped = sum(_act(note, "sagemaker:StopTrainingJob", ("status",), f"stopped {name}",
                       f"{name} ended meanwhile", sm.stop_training_job, TrainingJobName=name)
                  for name in plan.stop)
    released = sum(_act(note, "sagemaker:UpdateTrainingJob", NO_POOL_HINTS,
                        f"released the warm pool of {name}", f"no warm pool left for {name}",
                        sm.update_training_job, TrainingJobName=name,
                        ResourceConfig={"KeepAlivePeriodInSeconds": 0})
                   for name in plan.release)
    return stopped, released


def _act(note: Callable[[str], None], action: str, benign: tuple[str, ...], done: str,
         moot: str, call: Callable[..., Any], **request: Any) -> bool:
    """One call; a ValidationException naming one of `benign` means nothing is left to do."""
    try:
        with aws_errors(action):
            call(**request)
    except UserError as err:
        cause = err.__cause__
        if not (isinstance(cause, ClientError) and error_code(cause) == "ValidationException"
                and any(hint in error_message(cause).lower() for hint in benign)):
            raise
        note(moot)
        return False
    note(done)
    return True


def cleanup_sagemaker(session: boto3.session.Session, tag: str,
                      confirm: Callable[[], bool] | None) -> int:
    """Plan, show, ask (`confirm`; None: go ahead unasked), then stop and release."""
    plan = plan_cleanup(sm := sagemaker_client(session), tag)
    where = f"experiment tag '{tag}' in {session.region_name}"
    if not plan.total:
        print(f"no SageMaker training jobs of {where}: nothing to do")
        return 0
    print(f"{where}: {plan.total} jobs, {len(plan.stop)} running, {len(plan.release)} "
          "warm pools available" + (f", {plan.unchecked} older ended trials not checked for "
                                    "a warm pool" if plan.unchecked else ""))
    if confirm is not None and (plan.stop or plan.release):
        print("\n".join([f"will stop {n}" for n in plan.stop]
                        + [f"will release the warm pool of {n}" for n in plan.release]))
        if not confirm():
            print("nothing done")
            return 1
    stopped, released = carry_out(sm, plan)
    print(f"{stopped} stopped, {released} warm pools released")
    if stopped or plan.stopping:
        print("jobs that are stopping may leave warm pools when they end: rerun `stbench "
              f"cleanup --experiment_tag {tag}` in a few minutes")
    return 0
