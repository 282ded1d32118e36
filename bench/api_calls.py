"""API calls per poll: stbench's SageMaker adapter vs Syne Tune 0.13's SageMaker back-end.

For each n_workers: n running training jobs of one experiment, each with a few new log lines
in CloudWatch Logs (`[tune-metric]` reports and an ordinary line), then ONE poll (status and
new metrics of all jobs), counting API calls with a botocore `before-call` hook:
(a) `SageMakerJobService` (describe_training_jobs + read_metrics), (b) Syne Tune 0.13's
`sagemaker_search` re-implemented call for call (one `Search` per 20 jobs, then per job
`DescribeLogStreams` and `GetLogEvents` from the head of each stream).

    python bench/api_calls.py [--workers 4 64 512] [--write]

Runs against moto in-process (`mock_aws`) with fake credentials: no network, no AWS.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.update({  # before any client exists: nothing may reach real AWS
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
})
os.environ.pop("AWS_PROFILE", None)

import boto3  # noqa: E402
import moto  # noqa: E402
from docs_section import publish  # noqa: E402  (this folder)
from moto import mock_aws  # noqa: E402
from moto.core.models import DEFAULT_ACCOUNT_ID  # noqa: E402
from moto.core.utils import utcnow  # noqa: E402
from moto.sagemaker.models import SageMakerModelBackend, sagemaker_backends  # noqa: E402

from stbench.backends.jobs.job_requests import JobTemplate, trial_request  # noqa: E402
from stbench.backends.jobs.sagemaker import SageMakerJobService  # noqa: E402
from stbench.model.naming import experiment_base, job_name  # noqa: E402

SECTION = "## API calls per poll (bench/api_calls.py)"
REGION = "us-east-1"
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
REPORTS_PER_JOB = 3
SEARCH_BATCH = 20  # Syne Tune 0.13: "Sagemaker Search has a maximum length for filters of 20"
TEMPLATE = JobTemplate(
    image="123456789012.dkr.ecr.us-east-1.amazonaws.com/stbench-trainer:latest",
    benchmark="synthetic_curves", instance_type="ml.c5.xlarge",
    checkpoint_root="s3://stbench-bench/checkpoints/", output_root="s3://stbench-bench/output/",
    role_arn="arn:aws:iam::123456789012:role/stbench", keep_alive_seconds=600,
)
CONFIG = {"x": 0.5, "log_lr": -2.0, "width": 64, "epochs": 27}


class CallCounter:
    """API calls made through these clients (pages count, botocore's retries do not)."""

    def __init__(self, *clients: Any):
        self.calls: Counter[str] = Counter()
        for client in clients:
            client.meta.events.register("before-call", self._count)

    def _count(self, model: Any, **kwargs: Any) -> None:
        self.calls[model.name] += 1

    def take(self) -> Counter[str]:
        calls, self.calls = self.calls, Counter()
        return calls


@contextmanager
def sagemaker_list_semantics() -> Iterator[None]:
    """moto 5.2 gap: ListTrainingJobs cuts MaxResults out of ALL jobs, then applies
    NameContains/LastModifiedTimeAfter, so its page count grows with every job in the account.
    SageMaker filters first, then pages; this shim makes moto do the same."""
    original = SageMakerModelBackend.list_training_jobs

    def filtered_then_paged(self: Any, next_token: str | None, max_results: int | None,
                            *filters: Any, **named: Any) -> dict[str, Any]:
        summaries = original(self, None, None, *filters, **named)["TrainingJobSummaries"]
        start = int(next_token or 0)
        end = start + (max_results or len(summaries))
        return {"TrainingJobSummaries": summaries[start:end],
                "NextToken": str(end) if end < len(summaries) else None}

    with mock.patch.object(SageMakerModelBackend, "list_training_jobs", filtered_then_paged):
        yield


def running_jobs(session: boto3.session.Session,
                 base: str, n_jobs: int) -> tuple[SageMakerJobService, list[str]]:
    """n jobs created through the adapter, as SageMaker would show them: running for minutes."""
    service = SageMakerJobService(session, job_base=base, poll_seconds=0.0)
    jobs = sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION].training_jobs
    logs = session.client("logs")
    logs.create_log_group(logGroupName=LOG_GROUP)
    names = []
    for trial_id in range(n_jobs):
        name = job_name(base, trial_id)
        service.create_training_job(trial_request(TEMPLATE, name, trial_id, CONFIG))
        # moto makes every job Completed at once; SageMaker would show this one running.
        job = jobs[name]
        job.training_job_status = job.secondary_status = "InProgress"
        job.creation_time = job.last_modified_time = utcnow() - timedelta(minutes=10)
        logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream_of(name))
        names.append(name)
    return service, names


def stream_of(name: str) -> str:
    return f"{name}/algo-1-1700000000"


def write_logs(logs: Any, names: list[str], first_epoch: int) -> None:
    """What the trainer echoes between two polls: some reports and an ordinary line."""
    now = int(time.time() * 1000)
    for name in names:
        lines = ["epoch done"] + [
            "[tune-metric]: " + json.dumps({"epoch": e, "loss": 1.0 / e})
            for e in range(first_epoch, first_epoch + REPORTS_PER_JOB)
        ]
        logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream_of(name), logEvents=[
            {"timestamp": now + i, "message": line} for i, line in enumerate(lines)
        ])


def stbench_poll(service: SageMakerJobService, names: list[str]) -> int:
    """The poll the job backend makes each loop: status, then new metrics, of all jobs."""
    counter = CallCounter(service.sm, service.logs)
    status = service.describe_training_jobs(names)
    reports = service.read_metrics(names)
    assert len(status) == len(names), "every job has a status"
    assert sum(len(r) for r in reports.values()) == REPORTS_PER_JOB * len(names)
    calls = sum(counter.take().values())
    for client in (service.sm, service.logs):
        client.meta.events.unregister("before-call", counter._count)
    return calls


def syne_tune_013_poll(sm: Any, logs: Any, names: list[str]) -> tuple[int, bool]:
    """`sagemaker_search` of Syne Tune 0.13 (sagemaker_utils.py), which its SageMakerBackend
    calls once per Tuner loop from `_all_trial_results`: a `Search` per 20 jobs, then
    `get_log` for every job found: `DescribeLogStreams`, and per stream `GetLogEvents` from
    the head, then again with the forward token until the token repeats.

    Returns (calls, or_gap): moto's Search ignores the expression's Operator "Or" (it ANDs
    the 20 filters and finds nothing), so the jobs SageMaker would return are taken from the
    request; the Search calls themselves are made and counted."""
    counter = CallCounter(sm, logs)
    or_gap = False
    for start in range(0, len(names), SEARCH_BATCH):
        chunk = names[start:start + SEARCH_BATCH]
        results = sm.search(MaxResults=SEARCH_BATCH, Resource="TrainingJob", SearchExpression={
            "Filters": [{"Name": "TrainingJobName", "Operator": "Equals", "Value": name}
                        for name in chunk],
            "Operator": "Or",
        })["Results"]
        found = [result["TrainingJob"]["TrainingJobName"] for result in results]
        if len(found) < len(chunk):  # every job exists: SageMaker returns all of them
            or_gap, found = True, chunk
        for name in found:
            log_lines(logs, name)
    return sum(counter.take().values()), or_gap


def log_lines(logs: Any, name: str) -> list[str]:
    """Syne Tune 0.13's `get_log`: every line of the job's streams, read from the head."""
    streams = logs.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix=name)
    lines = []
    for stream in streams["logStreams"]:
        request = {"logGroupName": LOG_GROUP, "logStreamName": stream["logStreamName"],
                   "startFromHead": True}
        response = logs.get_log_events(**request)
        lines += [event["message"] for event in response["events"]]
        token = None
        while "nextForwardToken" in response and token != response["nextForwardToken"]:
            token = response["nextForwardToken"]
            response = logs.get_log_events(**request, nextToken=token)
            lines += [event["message"] for event in response["events"]]
    return lines


def measure(n_workers: int) -> dict[str, Any]:
    base = experiment_base("bench", "synthetic_curves", "ASHA", n_workers)
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        service, names = running_jobs(session, base, n_workers)
        logs = session.client("logs")
        write_logs(logs, names, first_epoch=1)
        raw = stbench_poll(service, names)
        write_logs(logs, names, first_epoch=1 + REPORTS_PER_JOB)
        with sagemaker_list_semantics():
            ours = stbench_poll(service, names)
        theirs, or_gap = syne_tune_013_poll(session.client("sagemaker"), logs, names)
    return {"n": n_workers, "stbench": ours, "stbench_raw_moto": raw, "syne_tune": theirs,
            "or_gap": or_gap}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[4, 64, 512])
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = parser.parse_args()

    rows = []
    for n_workers in args.workers:
        rows.append(measure(n_workers))
        print(f"measured: {rows[-1]}", flush=True)
    or_gap = any(row["or_gap"] for row in rows)
    lines = [
        SECTION, "",
        f"Measured on {time.strftime('%Y-%m-%d')} against moto {moto.__version__} in-process "
        "(no AWS). Scenario: n_workers training jobs of one experiment, running for minutes, "
        f"each with {REPORTS_PER_JOB} new `[tune-metric]` lines and one other line in "
        "CloudWatch Logs; one poll = status and new metrics of all jobs. API calls counted "
        "with a botocore `before-call` hook (pages count; botocore's retries would add more).",
        "",
        "| n_workers | stbench calls/poll | Syne Tune 0.13 calls/poll | ratio |",
        "|---|---|---|---|",
    ]
    for row in rows:
        lines.append(f"| {row['n']} | {row['stbench']} | {row['syne_tune']} | "
                     f"{row['syne_tune'] / row['stbench']:.0f}x |")
    raw = ", ".join(f"{row['n']}: {row['stbench_raw_moto']}" for row in rows)
    lines += [
        "",
        "stbench: one `ListTrainingJobs` page (the experiment's trial-job prefix `<base>-t`, "
        "only jobs modified since 30 s before the previous poll; summaries carry status) and "
        "one `FilterLogEvents` page (all jobs' `[tune-metric]` lines and the trainer's end "
        "lines since 30 s before the previous poll, deduplicated by eventId; up to 10,000 "
        "per page; while a job that ended still lacks reports its end line announced, the "
        "query starts at that job's creation instead). A job that ends costs one "
        "`DescribeTrainingJob` (billable time, warm pool) and, once its reports are in, one "
        "paginated `FilterLogEvents` for its whole log (kept as the trial's std.out), not per "
        "poll; at the experiment's "
        "end each job kept with a warm pool costs one more, plus an `UpdateTrainingJob` and "
        "a `DescribeTrainingJob` until it reads Terminated if its pool is still there. A poll "
        "after more than 100 job changes needs another list page. moto 5.2 applies "
        "MaxResults before NameContains/LastModifiedTimeAfter, so its "
        "page count grows with all jobs in the account; the stbench column runs with a shim "
        f"that filters first, as SageMaker does (unshimmed moto: {raw} calls).",
        "",
        "Syne Tune 0.13: its `sagemaker_search`, which the Tuner calls once per loop (up to "
        "twice with `start_jobs_without_delay=False`, which 0.13 recommends with warm pools: "
        "`busy_trial_ids` searches again): one `Search` per 20 jobs, then per job one "
        "`DescribeLogStreams` and "
        "two `GetLogEvents` (the stream from its head, then once more until the forward token "
        "repeats), so it also rereads every log line each poll. All its calls were made "
        "against moto and counted"
        + ("; moto's `Search` ignores `Operator: Or` (it ANDs the filters and returns "
           "nothing), so the jobs each `Search` would return were taken from its request."
           if or_gap else "."),
        "",
    ]
    publish(lines, args.write)


if __name__ == "__main__":
    main()
