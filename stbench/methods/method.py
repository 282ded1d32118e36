"""What a method is: a scheduler factory with typed settings, and what it is given.

Its own module, so that the registry of built-ins and the loader of installed packages'
methods (`plugins.py`) both import it and not each other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from syne_tune.optimizer.scheduler import TrialScheduler

from stbench.methods.asha_rungs import with_sorted_rungs
from stbench.methods.settings import Setting, check_args, resolve
from stbench.model.benchmark import Benchmark
from stbench.model.method_args import MethodArgs


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
    """A method: `factory(context, **settings)` builds its scheduler; `package` names the
    installed distribution an entry point came from (None: built in)."""

    name: str
    description: str
    multi_fidelity: bool
    factory: Callable[..., TrialScheduler]
    settings: tuple[Setting, ...] = ()
    package: str | None = None

    def check(self, args: MethodArgs) -> MethodArgs:
        """The canonical variant (its label is what results call it); UserError if bad."""
        return check_args(self.name, self.settings, args)

    def values(self, args: MethodArgs) -> Mapping[str, Any]:
        """Every setting's value for the factory (None: decided by the method)."""
        return resolve(self.settings, self.check(args))

    def make_scheduler(self, context: MethodContext,
                       args: MethodArgs | None = None) -> TrialScheduler:
        values = self.values(args or MethodArgs(self.name))
        # ASHA's decisions, in O(log n)
        return with_sorted_rungs(self.factory(context, **values))
