"""What a study may cost, said before anything starts: an upper bound per instance type.

Per experiment: n_workers trial instances for the whole budget (at most the spec's
`max_cost`, which ends the experiment when its trials have spent it), plus, with warm pools,
each worker's pool for its whole keep-alive after the end (a clean end releases them at
once: this is what an end that cannot release them costs), plus, for a launched study, the
orchestrator job for its MaxRuntimeInSeconds. Pure arithmetic over the price table: no AWS,
so the same line shows in a dry run, a real launch and the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from stbench.model.prices import SECONDS_PER_HOUR, PriceTable
from stbench.model.spec import ExperimentSpec


@dataclass(frozen=True)
class ExperimentInstances:
    """The instances one experiment may hold, and for how long."""

    trial_type: str
    n_workers: int
    budget_seconds: float  # max_wallclock_time
    keep_alive_seconds: float = 0.0  # each pool's keep-alive after the end; 0: no warm pools
    max_cost: float | None = None  # USD the trials may spend (the spec's max_cost)
    orchestrator_type: str | None = None  # a launched experiment's orchestrator job
    orchestrator_seconds: float = 0.0  # its MaxRuntimeInSeconds


@dataclass(frozen=True)
class Part:
    """One kind of use of one instance type: trials, pools kept after the end, orchestrators."""

    what: str  # e.g. "trials: 2 experiments x 4 instances x 3 h"
    usd: float | None  # None: the type has no price


@dataclass(frozen=True)
class TypeCost:
    instance_type: str
    parts: tuple[Part, ...]

    @property
    def usd(self) -> float | None:
        if any(part.usd is None for part in self.parts):
            return None
        return sum(part.usd or 0.0 for part in self.parts)

    def describe(self) -> str:
        if self.usd is None:
            return (f"{self.instance_type}: no price in the table "
                    f"({'; '.join(part.what for part in self.parts)})")
        if len(self.parts) == 1:
            return f"{self.instance_type} {dollars(self.usd)} ({self.parts[0].what})"
        inner = "; ".join(f"{part.what} = {dollars(part.usd or 0.0)}" for part in self.parts)
        return f"{self.instance_type} {dollars(self.usd)} ({inner})"


@dataclass(frozen=True)
class CostEstimate:
    types: tuple[TypeCost, ...]
    table: PriceTable

    @property
    def known_usd(self) -> float:
        """The priced types' sum: the whole bound when nothing is unpriced."""
        return sum(kind.usd or 0.0 for kind in self.types)

    @property
    def unpriced(self) -> tuple[str, ...]:
        return tuple(kind.instance_type for kind in self.types if kind.usd is None)

    def total(self) -> str:
        """The study total in words; an unpriced type makes it unknown, never $0."""
        if not self.unpriced:
            return f"study total at most {dollars(self.known_usd)}"
        if len(self.unpriced) == len(self.types):
            return "study total unknown"
        return (f"study total unknown: at least {dollars(self.known_usd)} plus what "
                f"{', '.join(self.unpriced)} costs")

    def line(self) -> str:
        """The one line a user reads before anything starts."""
        if not self.types:  # every experiment is running or done already
            return f"cost estimate at SageMaker {self.table.describe()}: nothing starts, $0.00"
        types = " | ".join(kind.describe() for kind in self.types)
        hint = " (add the missing types to a prices YAML named by STBENCH_PRICES)" \
            if self.unpriced else ""
        return (f"cost estimate, an upper bound at SageMaker {self.table.describe()}: "
                f"{types} | {self.total()}{hint}")


def estimate(experiments: Sequence[ExperimentInstances], table: PriceTable) -> CostEstimate:
    """The bound per instance type (in order of first use), trials before pools before
    orchestrators within a type."""
    order: list[str] = []
    for experiment in experiments:
        order += [experiment.trial_type, *([experiment.orchestrator_type]
                                           if experiment.orchestrator_type else [])]
    kinds = list(dict.fromkeys(order))
    types = []
    for kind in kinds:
        price = table.prices.get(kind)
        parts = [part for part in (
            _trials([e for e in experiments if e.trial_type == kind], price),
            _pools([e for e in experiments if e.trial_type == kind and e.keep_alive_seconds > 0],
                   price),
            _orchestrators([e for e in experiments if e.orchestrator_type == kind], price),
        ) if part is not None]
        types.append(TypeCost(kind, tuple(parts)))
    return CostEstimate(tuple(types), table)


def _trials(experiments: list[ExperimentInstances], price: float | None) -> Part | None:
    if not experiments:
        return None
    shape = {(e.n_workers, e.budget_seconds) for e in experiments}
    if len(shape) == 1:
        workers, budget = shape.pop()
        what = (f"trials: {_count(len(experiments), 'experiment')} x "
                f"{_count(workers, 'instance')} x {duration(budget)}")
    else:
        hours = sum(e.n_workers * e.budget_seconds for e in experiments) / SECONDS_PER_HOUR
        what = f"trials: {hours:.4g} instance-hours in {len(experiments)} experiments"
    if price is None:
        return Part(what, None)
    usd, capped = 0.0, []
    for e in experiments:
        full = price * e.n_workers * e.budget_seconds / SECONDS_PER_HOUR
        if e.max_cost is not None and e.max_cost < full:
            capped.append(e.max_cost)
            full = e.max_cost
        usd += full
    if capped and len(capped) == len(experiments) and len(set(capped)) == 1:
        what += f", capped by max_cost {dollars(capped[0])} per experiment"
    elif capped:
        what += f", {len(capped)} of {len(experiments)} experiments capped by their max_cost"
    return Part(what, usd)


def _pools(experiments: list[ExperimentInstances], price: float | None) -> Part | None:
    if not experiments:
        return None
    pools = sum(e.n_workers for e in experiments)
    keep = {e.keep_alive_seconds for e in experiments}
    each = f" x {duration(keep.pop())}" if len(keep) == 1 else ""
    seconds = sum(e.n_workers * e.keep_alive_seconds for e in experiments)
    return Part(f"warm pools' keep-alive at the end: {_count(pools, 'pool')}{each}",
                None if price is None else price * seconds / SECONDS_PER_HOUR)


def _orchestrators(experiments: list[ExperimentInstances], price: float | None) -> Part | None:
    if not experiments:
        return None
    runtimes = {e.orchestrator_seconds for e in experiments}
    each = f" x {duration(runtimes.pop())}" if len(runtimes) == 1 else ""
    seconds = sum(e.orchestrator_seconds for e in experiments)
    return Part(f"orchestrators: {_count(len(experiments), 'job')}{each}",
                None if price is None else price * seconds / SECONDS_PER_HOUR)


def dollars(usd: float) -> str:
    """To the cent: '$17.66', '$1,204.00'; a cost under a cent is '<$0.01', never '$0.00'."""
    if usd <= 0:
        return "$0.00"
    if usd < 0.005:
        return "<$0.01"
    cents = Decimal(repr(round(usd, 9))).quantize(Decimal("0.01"), ROUND_HALF_UP)  # 10.805 up
    return f"${cents:,}"


def duration(seconds: float) -> str:
    """'45 s', '10 min', '3 h', '3.5 h'."""
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < SECONDS_PER_HOUR:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / SECONDS_PER_HOUR:.3g} h"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def experiment_instances(spec: ExperimentSpec, keep_alive_seconds: float,
                         orchestrator_type: str | None = None,
                         orchestrator_seconds: float = 0.0) -> ExperimentInstances:
    """One experiment of a resolved spec (its n_workers, budget and instance type set);
    `keep_alive_seconds` counts only with --warm_pool."""
    return ExperimentInstances(
        trial_type=str(spec.instance_type), n_workers=int(spec.n_workers or 1),
        budget_seconds=float(spec.max_wallclock_time or 0),
        keep_alive_seconds=keep_alive_seconds if spec.warm_pool else 0.0,
        max_cost=spec.max_cost, orchestrator_type=orchestrator_type,
        orchestrator_seconds=orchestrator_seconds)
