"""What every job of an experiment did and cost, as the job service last described it.

A trial's billing is known only once its jobs have ended (`BillableTimeInSeconds`), and the
time its warm pools were kept only once they were reused or terminated, usually after the
trial was retired, stopped and paused trials included. So the ledger hands out a trial's
annotations when the trial is retired, and later the changes: the experiment loop records
them in the trial's rows. Pure bookkeeping: no calls to any service.
"""

from __future__ import annotations

import time
from typing import Any

from stbench.backends.jobs.job_requests import JobTemplate
from stbench.backends.jobs.job_service import JobDescription
from stbench.model.job_statuses import (
    BUSY_JOB_STATUSES,
    FINAL_POOL_STATUSES,
    IN_PROGRESS,
    TERMINAL,
    WARM_AVAILABLE,
)
from stbench.model.naming import JOB_NAME
from stbench.model.prices import SECONDS_PER_HOUR, trial_cost

STARTING = "Starting"  # SecondaryStatus before the instances are ready: nothing billed yet


def trials_to_adopt(previous: dict[str, JobDescription],
                    known: set[str]) -> tuple[int, dict[int, list[str]]]:
    """An earlier run's trial jobs (not in `known`): the last trial id among them (-1: none),
    and the trials a resumed experiment takes into its ledger with all their jobs. Those are
    every trial whose jobs the service can still bill, so that its rows get what it really
    kept and cost: a kill -9 may have come before a bill or a pool's end was known. Only a
    trial whose jobs all ended with no bill to read (a local Docker run's, whose containers
    are gone) is left as its rows say."""
    trials: dict[int, list[str]] = {}
    for name in sorted(previous):
        match = JOB_NAME.match(name)
        if match is not None and match["kind"][0] == "t" and name not in known:
            trials.setdefault(int(match["kind"][1:7]), []).append(name)
    adopted = {trial_id: names for trial_id, names in trials.items()
               if any(previous[name].get("TrainingJobStatus") in BUSY_JOB_STATUSES
                      or previous[name].get("WarmPoolStatus") for name in names)
               or all(previous[name].get("BillableTimeInSeconds") is not None
                      for name in names)}
    return max(trials, default=-1), adopted


class JobLedger:
    def __init__(self, template: JobTemplate, prices: dict[str, float] | None = None):
        self.template = template
        self.prices = prices
        self.trial_of: dict[str, int] = {}
        self._names: dict[int, list[str]] = {}
        self._descriptions: dict[str, JobDescription] = {}
        self._no_pool: set[str] = set()  # jobs the service says kept no warm pool
        self._reused_from: dict[str, str] = {}  # job -> the job whose warm pool it started on
        self._handed_out: dict[int, dict[str, Any]] = {}  # retired trials' last annotations
        self._changed: set[int] = set()
        self._unbilled: dict[str, None] = {}  # kept, so a poll never walks the billed jobs
        self._added_at: dict[str, float] = {}  # our clock when we created the job

    def _track_billing(self, name: str) -> None:
        d = self._descriptions[name]
        if d["TrainingJobStatus"] not in TERMINAL or "BillableTimeInSeconds" not in d:
            self._unbilled[name] = None
        else:
            self._unbilled.pop(name, None)

    def add(self, trial_id: int, name: str) -> None:
        self.trial_of[name] = trial_id
        self._names.setdefault(trial_id, []).append(name)
        self._descriptions[name] = {"TrainingJobStatus": IN_PROGRESS}
        self._added_at[name] = time.time()
        self._track_billing(name)

    def adopt(self, trial_id: int, name: str, description: JobDescription) -> None:
        """A job an earlier run of the experiment created: its trial's rows hold what that
        run knew then (a pool read as Available, no reuse yet), so the trial's annotations
        are handed out again, whole, as soon as they are known here."""
        self.add(trial_id, name)
        self.update(name, description)
        self._handed_out.setdefault(trial_id, {})

    def jobs(self) -> list[str]:
        return list(self.trial_of)

    def description(self, name: str) -> JobDescription:
        return self._descriptions[name]

    def status(self, name: str) -> str:
        return str(self._descriptions[name]["TrainingJobStatus"])

    def update(self, name: str, description: JobDescription) -> None:
        if name not in self.trial_of or self._descriptions[name] == description:
            return
        self._descriptions[name] = description
        self._track_billing(name)
        self._changed.add(self.trial_of[name])
        # Pools belong to the account: a job of another experiment may take ours. Only a
        # job of ours gets the link; the pool's retained time counts once, on its own job.
        reused_by = (description.get("WarmPoolStatus") or {}).get("ReusedByJob")
        if reused_by in self.trial_of and self._reused_from.get(reused_by) != name:
            self._reused_from[reused_by] = name
            self._changed.add(self.trial_of[reused_by])

    def update_pool(self, name: str, pool: dict[str, Any] | None) -> None:
        """The pool as read after its release; None: the job kept none (no quota, no keep-alive)."""
        description = {k: v for k, v in self._descriptions[name].items() if k != "WarmPoolStatus"}
        if pool is None:
            self._no_pool.add(name)
        else:
            description["WarmPoolStatus"] = dict(pool)
        self.update(name, description)

    def started_on(self, name: str) -> str | None:
        """The job whose warm pool this one started on, where known."""
        return self._descriptions[name].get("WarmPoolReusedFrom") or self._reused_from.get(name)

    def set_started_on(self, name: str, pool_job: str) -> None:
        """A pool found by asking the service (the pool's job may be another experiment's)."""
        if self.started_on(name) != pool_job:
            self._reused_from[name] = pool_job
            self._changed.add(self.trial_of[name])

    def pool_final(self, name: str) -> bool:
        """Whether the job's pool can change no more: nothing to release, its time is final."""
        pool = self._descriptions[name].get("WarmPoolStatus") or {}
        return name in self._no_pool or pool.get("Status") in FINAL_POOL_STATUSES

    def unbilled(self) -> list[str]:
        """Jobs whose billable time is not known yet (running, or ended moments ago)."""
        return list(self._unbilled)

    def spent_usd(self, now: float | None = None) -> float | None:
        """USD the experiment's jobs have cost by `now` (epoch seconds), for a cost budget:
        billed jobs and their pools' retained time as SageMaker reports them, plus, for what
        is not billed yet, elapsed x price: a running job from its training start (from its
        creation while no description says it), an ended job's pool from the job's end,
        while the pool waits. SageMaker bills a job only once it ended, so a budget waiting
        for bills would be overrun by the running trials' whole runtime. None when the
        instance type has no price (an unknown cost is never $0)."""
        price = (self.prices or {}).get(self.template.instance_type)
        if price is None:
            return None
        now = time.time() if now is None else now
        seconds = 0.0
        for name, d in self._descriptions.items():
            pool = d.get("WarmPoolStatus") or {}
            billable = d.get("BillableTimeInSeconds")
            if d["TrainingJobStatus"] not in TERMINAL or billable is None:
                if d.get("SecondaryStatus") == STARTING:
                    continue
                start = (d.get("TrainingStartTime") or d.get("CreationTime")
                         or self._added_at[name])
                end = d.get("TrainingEndTime") or now
                billable = max(0.0, float(end) - float(start))
            retained = pool.get("ResourceRetainedBillableTimeInSeconds") or 0
            if pool.get("Status") == WARM_AVAILABLE and d.get("TrainingEndTime"):
                retained = max(retained, now - float(d["TrainingEndTime"]))
            seconds += float(billable) + float(retained)
        return price * self.template.instance_count * seconds / SECONDS_PER_HOUR

    def annotations(self, trial_id: int) -> dict[str, Any]:
        """Recorded with the trial's results when it is retired: its job, billing, warm pool."""
        self._handed_out[trial_id] = self._annotations(trial_id)
        return dict(self._handed_out[trial_id])

    def late_annotations(self) -> dict[int, dict[str, Any]]:
        """Retired trials whose annotations changed since they were handed out."""
        changed = {}
        for trial_id in self._changed & self._handed_out.keys():
            now = self._annotations(trial_id)
            if now != self._handed_out[trial_id]:
                changed[trial_id] = self._handed_out[trial_id] = now
        self._changed.clear()
        return {trial_id: dict(annotations) for trial_id, annotations in changed.items()}

    def _annotations(self, trial_id: int) -> dict[str, Any]:
        """Billing summed over the trial's jobs (a paused trial resumes in a new job); None
        until every one of them has ended, so an unknown cost never reads as free."""
        names = self._names[trial_id]
        descriptions = [self._descriptions[name] for name in names]
        bills = [d.get("BillableTimeInSeconds") for d in descriptions]
        billable = None if any(b is None for b in bills) else sum(bills)
        retained = sum((d.get("WarmPoolStatus") or {}).get("ResourceRetainedBillableTimeInSeconds")
                       or 0 for d in descriptions)
        cost = None
        if self.prices is not None and billable is not None:
            cost = trial_cost(self.prices, self.template.instance_type,
                              self.template.instance_count, billable, retained)
        current = descriptions[-1]
        pool = current.get("WarmPoolStatus") or {}
        return {
            "job_name": names[-1],
            "cost_usd": cost,
            "billable_seconds": billable,
            "warm_pool_retained_seconds": retained,
            "warm_pool_status": pool.get("Status"),
            "warm_pool_reused_by": pool.get("ReusedByJob"),
            "started_on_warm_pool_of": self.started_on(names[-1]),
        }
