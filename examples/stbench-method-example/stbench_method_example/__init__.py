"""RSMSR: random search whose trials Syne Tune's median stopping rule stops early.

A stbench method is a `Method`: a name, a one-line description, whether it uses the
benchmark's resource (multi-fidelity), a factory and its settings. The factory gets the
benchmark's `MethodContext` and every setting as a keyword argument (the user's value from
`--method_args RSMSR:key=value`, else the default), and returns a fresh Syne Tune scheduler.
"""

from __future__ import annotations

from syne_tune.optimizer.baselines import RandomSearch
from syne_tune.optimizer.scheduler import TrialScheduler
from syne_tune.optimizer.schedulers.median_stopping_rule import MedianStoppingRule

from stbench.methods.method import Method, MethodContext
from stbench.methods.settings import Setting


def make_scheduler(context: MethodContext, grace_time: int, grace_population: int,
                   rank_cutoff: float) -> TrialScheduler:
    searcher = RandomSearch(metrics=[context.metric], **context.common())
    return MedianStoppingRule(
        searcher, time_attr=context.resource_attr, metric=context.metric,
        grace_time=grace_time, grace_population=grace_population, rank_cutoff=rank_cutoff,
        random_seed=context.random_seed, do_minimize=context.do_minimize,
    )


RSMSR = Method(
    name="RSMSR",
    description="random search, trials below the median at their resource stopped",
    multi_fidelity=True,
    factory=make_scheduler,
    settings=(
        Setting("grace_time", int, 1, "resource before the rule may stop a trial", minimum=0),
        Setting("grace_population", int, 5, "trials reported at a resource before the rule "
                "applies there", minimum=1),
        Setting("rank_cutoff", float, 0.5, "quantile below which a trial is stopped (0.5: "
                "the median)", minimum=0, maximum=1),
    ),
)
