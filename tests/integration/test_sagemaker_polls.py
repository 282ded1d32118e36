"""What the SageMaker adapter's polls see on the local SageMaker endpoint: its own jobs only,
every listing page (empty ones too), statuses and descriptions as jobs run, stop and end,
each report once however late CloudWatch delivers it, and a flat number of calls per poll.

Every job state and log line comes from the endpoint running the jobs (see
sagemaker_endpoint.py); nothing here writes into a fake. One endpoint serves the module,
except where a test needs a log delay of its own.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator

import boto3
import pytest
import sagemaker_endpoint as endpoints
from sagemaker_endpoint import (
    CONFIG,
    POOLED,
    CallCounter,
    Gate,
    Listings,
    described,
    log_lines,
    poll,
    report,
    running_endpoint,
    say,
    service_of,
    start_trial,
    wait_all_ended,
    wait_ended,
    wait_for,
    wait_for_lines,
    wait_for_reports,
)

from stbench.backends.jobs import sagemaker as sagemaker_module
from stbench.model.container_contract import end_line, find_end
from stbench.model.job_statuses import COMPLETED, FAILED, IN_PROGRESS, STOPPING
from stbench.model.naming import experiment_base

pytestmark = pytest.mark.docker
endpoint, session, gates = endpoints.endpoint, endpoints.session, endpoints.gates  # fixtures

BASE = experiment_base("polls", "synthetic_curves", "ASHA", 3)
LATE_SECONDS = 5.0  # the log delay of the late-delivery test's endpoint
LOOK_BACK_SECONDS = 0.5  # its reader's look-back: far shorter than the delay


def test_an_experiment_sees_only_its_own_jobs(session: boto3.session.Session) -> None:
    """Seed 1's base is a prefix of seed 10's, and tag `a`'s trial-job prefix is inside tag
    `ba`'s job names, so NameContains returns both; moto's FilterLogEvents ignores the stream
    prefix and returns every experiment's lines. An experiment's polls keep its own jobs."""
    seed_1, seed_10 = (experiment_base("polls", "synthetic_curves", "ASHA", s) for s in (1, 10))
    tag_a, tag_ba = (experiment_base(tag, "synthetic_curves", "ASHA", 1) for tag in ("a", "ba"))
    services = [service_of(session, base) for base in (seed_1, seed_10, tag_a, tag_ba)]
    ours, a_reader = services[0], services[2]
    mine, tens, a_job, ba_job = (
        start_trial(service, 0, say(report(loss=1.0, epoch=1))) for service in services)
    for name in (mine, tens, a_job, ba_job):
        wait_for_lines(session, name, 1)

    assert list(ours.describe_training_jobs([mine, tens])) == [mine]
    assert list(ours.read_metrics([mine, tens])) == [mine]
    listings = Listings(a_reader)
    assert list(a_reader.describe_training_jobs([a_job, ba_job])) == [a_job]
    assert ba_job in listings.names()  # the listing did return tag `ba`'s job
    assert list(a_reader.read_metrics([a_job, ba_job])) == [a_job]


def test_listing_follows_tokens_through_empty_pages(
        session: boto3.session.Session, gates: Callable[[], Gate],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """SageMaker (and the endpoint) cut a ListTrainingJobs page before filtering it: pages
    of other experiments' jobs come back empty with a NextToken, and the poll goes on."""
    monkeypatch.setattr(sagemaker_module, "LIST_PAGE_SIZE", 2)
    running = gates()
    other = service_of(session, experiment_base("polls-other", "synthetic_curves", "ASHA", 3))
    others = [start_trial(other, trial, running.wait) for trial in range(3)]  # listed first
    service = service_of(session, BASE)
    names = [start_trial(service, trial, running.wait) for trial in range(4)]
    names.append(start_trial(service, 4))
    wait_ended(session, names[4])
    listings = Listings(service)

    status = service.describe_training_jobs(names)
    assert [status[n]["TrainingJobStatus"] for n in names] == [IN_PROGRESS] * 4 + [COMPLETED]
    found, token = listings.pages[0]
    assert found == [] and token  # a page of the other experiment's jobs: empty, a token
    assert listings.pages[-1][1] is None  # followed to the last page
    assert service.describe_training_jobs(others[:1]) == {}  # another experiment's job


def test_status_and_terminal_descriptions(session: boto3.session.Session,
                                          gates: Callable[[], Gate]) -> None:
    """Ended jobs are described once (failure reason, billable time, warm pool), running ones
    only listed."""
    end, keep_running = gates(), gates()
    service = service_of(session, BASE)
    names = [start_trial(service, 0, end.wait, template=POOLED),
             start_trial(service, 1, end.wait, "echo boom > /opt/ml/output/failure", "exit 1",
                         template=POOLED),
             start_trial(service, 2, keep_running.wait, template=POOLED)]
    counter = CallCounter(service)
    status = service.describe_training_jobs(names)
    assert {n: d["TrainingJobStatus"] for n, d in status.items()} == dict.fromkeys(
        names, IN_PROGRESS)
    assert counter.take() == {"ListTrainingJobs": 1}

    end.open()
    done_now, failed_now = wait_ended(session, *names[:2])
    status = service.describe_training_jobs(names)
    assert counter.take() == {"ListTrainingJobs": 1, "DescribeTrainingJob": 2}
    done, failed, running = (status[n] for n in names)
    assert done["TrainingJobStatus"] == COMPLETED
    assert done["BillableTimeInSeconds"] == done_now["BillableTimeInSeconds"] >= 1
    assert done["WarmPoolStatus"]["Status"] == "Available"
    assert isinstance(done["WarmPoolStatus"]["ResourceRetainedBillableTimeInSeconds"], int)
    assert isinstance(done["TrainingEndTime"], float) and isinstance(done["CreationTime"], float)
    assert failed["TrainingJobStatus"] == FAILED and failed["FailureReason"] == "boom"
    assert failed["BillableTimeInSeconds"] == failed_now["BillableTimeInSeconds"]
    assert running["TrainingJobStatus"] == IN_PROGRESS

    service.describe_training_jobs(names)  # ended jobs are described once, not per poll
    assert counter.take() == {"ListTrainingJobs": 1}


def test_stop_reports_stopping_until_sagemaker_says_more(session: boto3.session.Session,
                                                         gates: Callable[[], Gate]) -> None:
    service = service_of(session, BASE)
    name = start_trial(service, 0, say("started"), gates().wait)  # ignores SIGTERM: killed
    wait_for_lines(session, name, 1)
    service.stop_training_job(name)
    assert service.describe_training_jobs([name])[name]["TrainingJobStatus"] == STOPPING
    seen: list[str] = []

    def stopped() -> bool:
        seen.append(service.describe_training_jobs([name])[name]["TrainingJobStatus"])
        return seen[-1] == "Stopped"

    wait_for(stopped, f"{name} to stop")
    assert set(seen) <= {STOPPING, "Stopped"}, "never InProgress again"
    service.stop_training_job(name)  # ended meanwhile: SageMaker's ValidationException is moot


def test_jobs_of_an_earlier_process_are_described_once(
        session: boto3.session.Session, gates: Callable[[], Gate],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A resumed experiment asks about jobs this service did not create and that changed
    before its first listing reaches back (no look-back here instead of 5 minutes): each is
    described once, then followed through the listing."""
    monkeypatch.setattr(sagemaker_module, "INITIAL_LOOKBACK_SECONDS", 0.0)
    running = gates()
    earlier = service_of(session, BASE)
    names = [start_trial(earlier, 0, say("started"), running.wait), start_trial(earlier, 1)]
    wait_ended(session, names[1])
    wait_for_lines(session, names[0], 1)  # in Training: its last change before ours

    service = service_of(session, BASE)
    counter = CallCounter(service)
    status = service.describe_training_jobs(names)
    assert [status[n]["TrainingJobStatus"] for n in names] == [IN_PROGRESS, COMPLETED]
    # nothing known to run yet: no listing, one describe each
    assert counter.take() == {"DescribeTrainingJob": 2}
    service.describe_training_jobs(names)
    assert counter.take() == {"ListTrainingJobs": 1}  # the running one is followed by listing

    running.open()
    wait_ended(session, names[0])
    assert service.describe_training_jobs(names)[names[0]]["TrainingJobStatus"] == COMPLETED
    assert counter.take() == {"ListTrainingJobs": 1, "DescribeTrainingJob": 1}


def test_metrics_per_job_once_across_polls(session: boto3.session.Session,
                                           gates: Callable[[], Gate]) -> None:
    more = gates()
    service = service_of(session, BASE)
    a = start_trial(service, 0, say("starting"), say(report(loss=1.0, epoch=1)),
                    say(report(loss=0.5, epoch=2)), more.wait, say(report(loss=0.25, epoch=3)))
    b = start_trial(service, 1, say("[tune-metric]: not json"), say("just a line"))
    c = start_trial(service, 2, say(report(loss=3.0, epoch=1, st_trainer_timestamp=123.0)))
    other = service_of(session, experiment_base("polls-other", "synthetic_curves", "ASHA", 3))
    theirs = start_trial(other, 1, say(report(loss=9.0)))
    for name, lines in ((a, 3), (b, 2), (c, 1), (theirs, 1)):
        wait_for_lines(session, name, lines)

    first = service.read_metrics([a, b])
    assert list(first) == [a]
    assert [r["loss"] for r in first[a]] == [1.0, 0.5]
    assert all(isinstance(r["st_trainer_timestamp"], float) for r in first[a])
    assert abs(first[a][0]["st_trainer_timestamp"] - time.time()) < 60

    more.open()
    wait_for_lines(session, a, 4)
    second = service.read_metrics([a, b, c])
    assert [r["loss"] for r in second[a]] == [0.25]  # earlier events come back, not twice
    assert second[c] == [{"loss": 3.0, "epoch": 1, "st_trainer_timestamp": 123.0}]
    assert b not in second
    assert service.read_metrics([a, b, c]) == {}


@pytest.mark.parametrize("n_jobs", [4, 64])
def test_calls_per_poll_do_not_grow_with_jobs(session: boto3.session.Session,
                                              gates: Callable[[], Gate], n_jobs: int) -> None:
    more, finish = gates(), gates()
    service = service_of(session, BASE)
    both_reports = [say(report(loss=1.0, epoch=1)), more.wait, say(report(loss=0.5, epoch=2))]
    names = [start_trial(service, 0, *both_reports, say(end_line(2)))]
    names += [start_trial(service, trial, *both_reports, finish.wait)
              for trial in range(1, n_jobs)]
    wait_for_reports(session, names, 1)
    counter = CallCounter(service)

    status, metrics = poll(service, names)
    assert len(status) == n_jobs and len(metrics) == n_jobs
    assert counter.take() == {"ListTrainingJobs": 1, "FilterLogEvents": 1}

    more.open()  # every job reports again, the first one ends: one describe, once
    wait_for_reports(session, names, 2)
    wait_ended(session, names[0])
    status, metrics = poll(service, names)
    assert status[names[0]]["TrainingJobStatus"] == COMPLETED
    assert sum(len(reports) for reports in metrics.values()) == n_jobs
    calls = counter.take()
    assert calls == {"ListTrainingJobs": 1, "DescribeTrainingJob": 1, "FilterLogEvents": 1}

    poll(service, names)
    assert sum(counter.take().values()) <= 2
    finish.open()
    wait_all_ended(session)


def test_refresh_at_most_once_per_poll_interval(session: boto3.session.Session,
                                                gates: Callable[[], Gate]) -> None:
    service = service_of(session, BASE, poll_seconds=0.3)
    running = gates()
    names = [start_trial(service, trial, running.wait) for trial in range(2)]
    counter = CallCounter(service)
    for _ in range(5):
        poll(service, names)
    assert counter.take() == {"ListTrainingJobs": 1, "FilterLogEvents": 1}
    started = time.monotonic()
    service.wait_for_activity(10.0)
    assert 0.1 < time.monotonic() - started < 1.0
    poll(service, names)
    assert counter.take() == {"ListTrainingJobs": 1, "FilterLogEvents": 1}


@pytest.fixture
def late_session(images: dict[str, str], isolated_aws_env: None,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.session.Session]:
    """An endpoint of its own whose CloudWatch delivers each line LATE_SECONDS after it was
    written: far later than the reader's look-back."""
    with running_endpoint(dataclasses.replace(CONFIG, log_delay_seconds=LATE_SECONDS)) as late:
        yield late.session(monkeypatch)


def test_a_report_delivered_after_any_look_back_is_read_once_the_job_ends(
        late_session: boto3.session.Session, gates: Callable[[], Gate]) -> None:
    """CloudWatch keeps a line's write time, however late it delivers it: a report older
    than the reader's look-back when it arrives is still read, once the job has ended, and
    the trial's log counts as complete only once the trainer's end line and every report it
    announced are in (CloudWatch need not deliver them in order: here the third report is
    simply printed after the end line)."""
    session = late_session
    announced, ending = gates(), gates()
    service = service_of(session, BASE, metrics_margin_seconds=LOOK_BACK_SECONDS)
    name = start_trial(service, 0, say(report(loss=0.5, epoch=1)), say(report(loss=0.4, epoch=2)),
                       announced.wait, say(end_line(3)), ending.wait,
                       say(report(loss=0.3, epoch=3)))

    def delivered_but_unseen(lines: Callable[[list[str]], bool]) -> bool:
        """Polls as the job backend makes them, while the job runs and CloudWatch delivers."""
        status, metrics = poll(service, [name])
        assert metrics == {}, "older than the look-back when delivered: not seen yet"
        assert status[name]["TrainingJobStatus"] == IN_PROGRESS
        return lines(log_lines(session, name))

    wait_for(lambda: delivered_but_unseen(lambda lines: len(lines) == 2), "two reports")
    announced.open()
    wait_for(lambda: delivered_but_unseen(lambda lines: any(map(find_end, lines))), "end line")

    ending.open()
    read: list[dict] = []

    def completed() -> bool:
        status, metrics = poll(service, [name])
        read.extend(metrics.get(name, []))
        return status[name]["TrainingJobStatus"] == COMPLETED

    wait_for(completed, f"{name} to complete")
    assert [r["epoch"] for r in read] == [1, 2]
    assert not service.metrics_complete(name), "the end line announced 3 reports"

    wait_for(lambda: len(log_lines(session, name)) == 4, "the third report")
    assert [r["epoch"] for r in poll(service, [name])[1][name]] == [3]
    assert service.metrics_complete(name)
    assert poll(service, [name])[1] == {}, "each report is handed out once"
    assert described(session, name)["TrainingJobStatus"] == COMPLETED
