"""HPO methods: a registry of small factories over Syne Tune schedulers.

Each factory takes one typed `MethodContext` and returns a fresh scheduler, so adding a
method is one function and one registry line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from syne_tune.optimizer import baselines
from syne_tune.optimizer.scheduler import TrialScheduler

from stbench.methods.asha_rungs import with_sorted_rungs
from stbench.model.benchmark import Benchmark
from stbench.model.errors import UserError, did_you_mean


@dataclass(frozen=True)
class MethodContext:
    """Everything a scheduler factory needs about the benchmark and the seed."""

    config_space: dict[str, Any]
    metric: str
    mode: str
    resource_attr: str
    max_resource: int
    random_seed: int
    points_to_evaluate: tuple[dict[str, Any], ...] = ()

    @classmethod
    def for_benchmark(cls, benchmark: Benchmark, random_seed: int) -> MethodContext:
        return cls(
            config_space=benchmark.config_space,
            metric=benchmark.metric,
            mode=benchmark.mode,
            resource_attr=benchmark.resource_attr,
            max_resource=benchmark.max_resource,
            random_seed=random_seed,
            points_to_evaluate=benchmark.points_to_evaluate,
        )

    @property
    def do_minimize(self) -> bool:
        return self.mode == "min"

    def common(self) -> dict[str, Any]:
        """Arguments every single-objective Syne Tune baseline accepts."""
        return {
            "config_space": self.config_space,
            "do_minimize": self.do_minimize,
            "random_seed": self.random_seed,
            "points_to_evaluate": [dict(p) for p in self.points_to_evaluate] or None,
        }

    def multi_fidelity(self) -> dict[str, Any]:
        return {"time_attr": self.resource_attr, "max_t": self.max_resource}


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    multi_fidelity: bool
    factory: Callable[[MethodContext], TrialScheduler]

    def make_scheduler(self, context: MethodContext) -> TrialScheduler:
        return with_sorted_rungs(self.factory(context))  # ASHA's decisions, in O(log n)


def _random_search(c: MethodContext) -> TrialScheduler:
    return baselines.RandomSearch(metrics=[c.metric], **c.common())


def _bo(c: MethodContext) -> TrialScheduler:
    from stbench.methods.gp_searcher import make_bo_scheduler

    return make_bo_scheduler(metric=c.metric, **c.common())


def _mobster(c: MethodContext) -> TrialScheduler:
    from stbench.methods.gp_searcher import make_mobster_scheduler

    return make_mobster_scheduler(metric=c.metric, **c.common(), **c.multi_fidelity())


def _single(cls: type) -> Callable[[MethodContext], TrialScheduler]:
    return lambda c: cls(metric=c.metric, **c.common())


def _multi(cls: type) -> Callable[[MethodContext], TrialScheduler]:
    return lambda c: cls(metric=c.metric, **c.common(), **c.multi_fidelity())


_METHODS = (
    Method("RS", "random search, every trial to the full resource", False, _random_search),
    Method("BO", "Gaussian-process Bayesian optimization with expected improvement", False, _bo),
    Method("TPE", "tree-structured Parzen estimator (kernel densities)", False, _single(
        baselines.TPE)),
    Method("REA", "regularized evolution", False, _single(baselines.REA)),
    Method("BORE", "BO by density-ratio estimation", False, _single(baselines.BORE)),
    Method("CQR", "conformal quantile regression surrogate", False, _single(baselines.CQR)),
    Method("ASHA", "asynchronous successive halving, random proposals", True, _multi(
        baselines.ASHA)),
    Method("BOHB", "ASHA with kernel-density proposals", True, _multi(baselines.BOHB)),
    Method("MOBSTER", "ASHA with Gaussian-process proposals", True, _mobster),
    Method("ASHABORE", "ASHA with BORE proposals", True, _multi(baselines.ASHABORE)),
    Method("ASHACQR", "ASHA with conformal quantile regression proposals", True, _multi(
        baselines.ASHACQR)),
)

METHODS: Mapping[str, Method] = MappingProxyType({m.name: m for m in _METHODS})


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise UserError(
            f"unknown method '{name}'; valid ones: {', '.join(METHODS)}"
            f"{did_you_mean(name, METHODS)}"
        ) from None
