"""Which SageMaker price a trial is charged at, on every back-end, for a cost budget.

On SageMaker a trial is a job on the spec's instance type. Elsewhere (local processes,
trainer containers, simulation) nothing is billed, but a study that asks "how good per
dollar?" needs a price: such trials are priced as the SageMaker jobs they stand for, at
the benchmark's SageMaker instance type (its `sagemaker:` block, else `instance_type`),
and labelled estimated. The local instance type is not used: on one machine it is shared
by all workers (e.g. a 4-GPU type for 4 trials), so charging it per trial would count it
once per worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stbench.model.backend_names import BILLED_BACKENDS, SAGEMAKER
from stbench.model.benchmark import Benchmark
from stbench.model.errors import UserError
from stbench.model.prices import PRICES_ENV


@dataclass(frozen=True)
class TrialPricing:
    instance_type: str
    usd_per_hour: float | None  # None: the price table lacks the type
    estimated: bool  # priced as SageMaker jobs, for trials that ran elsewhere

    @classmethod
    def for_run(cls, backend: str, spec_instance_type: str | None, benchmark: Benchmark,
                prices: dict[str, float]) -> TrialPricing:
        if backend in BILLED_BACKENDS:
            kind = str(spec_instance_type or benchmark.for_backend(backend).instance_type)
        else:
            kind = benchmark.for_backend(SAGEMAKER).instance_type
        return cls(kind, prices.get(kind), backend not in BILLED_BACKENDS)

    def require_price(self, max_cost: float | None) -> None:
        """A cost budget needs a price: without one the trials' cost is unknown, and an
        unknown cost must never read as $0 (the budget would never end anything)."""
        if max_cost is not None and self.usd_per_hour is None:
            raise UserError(
                f"--max_cost {max_cost:g} needs a price for {self.instance_type}, which the "
                f"price table lacks: add it to a prices YAML named by {PRICES_ENV}, or leave "
                "out --max_cost")

    def cost(self, seconds: float) -> float | None:
        if self.usd_per_hour is None:
            return None
        return self.usd_per_hour * max(0.0, seconds) / 3600.0

    def describe(self) -> dict[str, Any]:
        """For an experiment's metadata: how its rows' cost_usd was priced."""
        return {"cost_instance_type": self.instance_type,
                "cost_usd_per_hour": self.usd_per_hour, "cost_estimated": self.estimated}
