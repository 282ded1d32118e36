"""What an experiment's trials have cost so far, for `--max_cost` and the rows' cost_usd.

Two sources, one answer. A back-end that bills (SageMaker jobs, and trainer containers
through the local adapter's billing) says it: billed time of ended jobs plus elapsed x price
of running ones (`spent_usd`). Local and simulated trials bill nothing: the meter times each
trial's running spells on the loop's clock (simulated time in a simulation) and prices them
at `TrialPricing`'s rate, as an estimate. Either way an earlier run's spending (before a
`--resume`) is added, so a budget holds across interruptions.
"""

from __future__ import annotations

from collections.abc import Callable

from stbench.model.trial_pricing import TrialPricing


class CostMeter:
    def __init__(self, pricing: TrialPricing, billed: Callable[[], float | None] | None = None,
                 spent_before: float = 0.0):
        """`billed`: the back-end's own spent cost, None where it bills nothing."""
        self.pricing = pricing
        self.billed = billed
        self.spent_before = spent_before
        self._started: dict[int, float] = {}  # running trials: when their spell began
        self._seconds: dict[int, float] = {}  # trials' ended spells (a paused trial resumes)
        self._ended_seconds = 0.0

    @property
    def estimates(self) -> bool:
        """Whether the meter prices trials itself (the back-end bills nothing)."""
        return self.billed is None

    def trial_started(self, trial_id: int, now: float) -> None:
        self._started.setdefault(trial_id, now)

    def trial_ended(self, trial_id: int, now: float) -> dict[str, float | None]:
        """The trial's annotations: its estimated cost so far ({} where the back-end bills:
        its own annotations carry the cost)."""
        start = self._started.pop(trial_id, None)
        if start is not None:
            spell = max(0.0, now - start)
            self._seconds[trial_id] = self._seconds.get(trial_id, 0.0) + spell
            self._ended_seconds += spell
        if not self.estimates:
            return {}
        return {"cost_usd": _rounded(self.pricing.cost(self._seconds.get(trial_id, 0.0)))}

    def spent(self, now: float) -> float | None:
        """USD spent by now, this run's running trials included; None: no price."""
        if self.billed is not None:
            billed = self.billed()
            return None if billed is None else self.spent_before + billed
        running = sum(max(0.0, now - start) for start in self._started.values())
        cost = self.pricing.cost(self._ended_seconds + running)
        return None if cost is None else self.spent_before + cost


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 9)
