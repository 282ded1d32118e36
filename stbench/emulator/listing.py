"""ListTrainingJobs paging, with MaxResults applied before the filters, as AWS documents it.

AWS documents that with StatusEquals, "the MaxResults number of training jobs are first
retrieved ignoring the StatusEquals parameter and then they are filtered". The endpoint does
the same for every filter but the creation-time range: a page is the next MaxResults jobs in
sort order (within CreationTimeAfter/Before), and then NameContains, StatusEquals,
WarmPoolStatusEquals and LastModifiedTimeAfter/Before thin it out. So a page can be empty
and still carry a NextToken, deterministically, and a client must follow NextToken to the
end. Defaults are the API reference's: SortBy CreationTime, SortOrder Ascending,
MaxResults 10.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from typing import Any

from stbench.emulator.job_records import TrainingJob
from stbench.emulator.protocol import validation_error

DEFAULT_MAX_RESULTS = 10


def _sort_key(job: TrainingJob, sort_by: str) -> list[Any]:
    if sort_by == "Name":
        return [job.name]
    if sort_by == "Status":
        return [job.status, job.created, job.name]
    return [job.created, job.name]


def _encode(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _decode(token: str) -> list[Any]:
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError):
        raise validation_error("Invalid pagination token: NextToken is not one this endpoint "
                               "gave out") from None
    if not isinstance(key, list):
        raise validation_error("Invalid pagination token")
    return key


def _within(value: float, after: float | None, before: float | None) -> bool:
    return (after is None or value > after) and (before is None or value < before)


def list_training_jobs(jobs: Iterable[TrainingJob], request: dict[str, Any],
                       now: float) -> dict[str, Any]:
    """The ListTrainingJobs answer over `jobs` (those of the caller's region)."""
    sort_by = request.get("SortBy", "CreationTime")
    descending = request.get("SortOrder", "Ascending") == "Descending"
    limit = int(request.get("MaxResults", DEFAULT_MAX_RESULTS))
    ranked = sorted(
        (job for job in jobs if _within(job.created, request.get("CreationTimeAfter"),
                                        request.get("CreationTimeBefore"))),
        key=lambda job: _sort_key(job, sort_by), reverse=descending)
    if "NextToken" in request:
        after = _decode(request["NextToken"])
        ranked = [job for job in ranked
                  if (_sort_key(job, sort_by) < after if descending
                      else _sort_key(job, sort_by) > after)]
    page, rest = ranked[:limit], ranked[limit:]
    summaries = [job.summary(now) for job in page if _matches(job, request, now)]
    answer: dict[str, Any] = {"TrainingJobSummaries": summaries}
    if rest:
        answer["NextToken"] = _encode(_sort_key(page[-1], sort_by))
    return answer


def _matches(job: TrainingJob, request: dict[str, Any], now: float) -> bool:
    if request.get("NameContains", "") not in job.name:
        return False
    if request.get("StatusEquals") not in (None, job.status):
        return False
    wanted_pool = request.get("WarmPoolStatusEquals")
    if wanted_pool is not None and job.pool_status != wanted_pool:
        return False
    return _within(job.modified, request.get("LastModifiedTimeAfter"),
                   request.get("LastModifiedTimeBefore"))
