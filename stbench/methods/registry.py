"""HPO methods: a registry of small factories over Syne Tune schedulers.

Each factory takes one typed `MethodContext` and the method's settings (declared `Setting`s,
named as Syne Tune's constructors name them) and returns a fresh scheduler, so adding a method
is one function and one registry line. Methods of installed packages join through the
`stbench.methods` entry-point group (`plugins.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from types import MappingProxyType
from typing import Any

from syne_tune.optimizer import baselines
from syne_tune.optimizer.scheduler import TrialScheduler

from stbench.methods.method import Method, MethodContext
from stbench.methods.settings import Setting
from stbench.model.errors import UserError, did_you_mean
from stbench.model.method_args import MethodArgs


def _random_search(c: MethodContext) -> TrialScheduler:
    return baselines.RandomSearch(metrics=[c.metric], **c.common())


def _bo(c: MethodContext, num_initial_random: int | None) -> TrialScheduler:
    from stbench.methods.gp_searcher import make_bo_scheduler

    return make_bo_scheduler(metric=c.metric, num_initial_random=num_initial_random,
                             **c.common())


def _mobster(c: MethodContext, **settings: Any) -> TrialScheduler:
    from stbench.methods.gp_searcher import make_mobster_scheduler

    return make_mobster_scheduler(metric=c.metric, **c.common(), **c.multi_fidelity(),
                                  **settings)


def _single(cls: type) -> Callable[..., TrialScheduler]:
    return lambda c, **settings: cls(metric=c.metric, **c.common(), **settings)


def _multi(cls: type) -> Callable[..., TrialScheduler]:
    return lambda c, **settings: cls(metric=c.metric, **c.common(), **c.multi_fidelity(),
                                     **settings)


def _with_searcher(make_searcher: Callable[..., Any]) -> Callable[..., TrialScheduler]:
    """A single-objective scheduler over a Syne Tune searcher whose settings its baseline
    (BORE, CQR) does not pass on."""
    from syne_tune.optimizer.schedulers.single_objective_scheduler import (
        SingleObjectiveScheduler,
    )

    def factory(c: MethodContext, **settings: Any) -> TrialScheduler:
        common = c.common()
        searcher = make_searcher(config_space=c.config_space, random_seed=c.random_seed,
                                 points_to_evaluate=common["points_to_evaluate"], **settings)
        return SingleObjectiveScheduler(c.config_space, metric=c.metric,
                                        do_minimize=c.do_minimize, searcher=searcher,
                                        random_seed=c.random_seed)

    return factory


def _bore_searcher(**kwargs: Any) -> Any:
    from syne_tune.optimizer.schedulers.searchers.bore import Bore

    return Bore(**kwargs)


def _cqr_searcher(**kwargs: Any) -> Any:
    from syne_tune.optimizer.schedulers.searchers.conformal.conformal_quantile_regression_searcher import (  # noqa: E501
        ConformalQuantileRegression,
    )

    return ConformalQuantileRegression(**kwargs)


_RUNGS = (
    Setting("grace_period", int, 1, "resource of the lowest rung: every trial runs this far",
            minimum=1),
    Setting("reduction_factor", float, 3.0, "rung ratio: 1/reduction_factor of the trials "
            "reaching a rung go on to the next", minimum=1, above=True),
)
_ASHA = (*_RUNGS, Setting("brackets", int, 1, "brackets of different grace periods (1: "
                          "successive halving; more: asynchronous Hyperband)", minimum=1))
_KDE = (
    Setting("num_min_data_points", int, None, "observations before the densities are fitted "
            "(configs are random until then)", minimum=1, auto="the number of hyperparameters"),
    Setting("top_n_percent", int, 15, "percent of observations that model the good configs",
            minimum=1, maximum=99),
    Setting("min_bandwidth", float, 1e-3, "smallest kernel bandwidth", minimum=0, above=True),
    Setting("num_candidates", int, 64, "candidates sampled to maximize the density ratio",
            minimum=1),
    Setting("bandwidth_factor", int, 3, "widens the bandwidth candidates are sampled with",
            minimum=1),
    Setting("random_fraction", float, 0.33, "fraction of configs drawn uniformly at random",
            minimum=0, maximum=1),
)
_INITIAL = "random configs before the GP proposes"
_BO = (Setting("num_initial_random", int, None, _INITIAL, minimum=1,
               auto="max(4, hyperparameters + 1)"),)
_MOBSTER = (
    *_RUNGS,
    Setting("num_initial_random", int, None, "random configs until this many trials reported "
            "at one rung", minimum=1, auto="encoded dimensions + 1"),
    Setting("resource_kernel", str, "matern", "GP over the resource: one Matern kernel, or "
            "Syne Tune 0.13's exponential-decay model", choices=("matern", "exp-decay-sum")),
)
_REA = (
    Setting("population_size", int, 100, "configs kept; the oldest one leaves", minimum=1),
    Setting("sample_size", int, 10, "configs drawn from the population to pick a parent",
            minimum=1),
)
_BORE = (
    Setting("gamma", float, 0.25, "fraction of observations classified as good", minimum=0,
            maximum=1, above=True),
    Setting("classifier", str, "xgboost", "the classifier of good vs bad configs",
            choices=("xgboost", "mlp", "rf", "logreg")),
    Setting("calibrate", bool, False, "calibrate the classifier by cross-validation"),
    Setting("acq_optimizer", str, "rs", "how the acquisition is maximized",
            choices=("rs", "de", "rs_with_replacement")),
    Setting("feval_acq", int, 500, "acquisition evaluations per proposal", minimum=1),
    Setting("random_prob", float, 0.0, "probability of a random config instead",
            minimum=0, maximum=1),
    Setting("init_random", int, 6, "random configs before the classifier proposes", minimum=1),
)
_CQR = (
    Setting("num_init_random_draws", int, 5, "random configs before the surrogate proposes",
            minimum=1),
    Setting("update_frequency", int, 1, "results between surrogate refits", minimum=1),
    Setting("max_fit_samples", int, None, "observations the surrogate is fitted on at most",
            minimum=1, auto="all"),
)

_METHODS = (
    Method("RS", "random search, every trial to the full resource", False, _random_search),
    Method("BO", "Gaussian-process Bayesian optimization with expected improvement", False, _bo,
           _BO),
    Method("TPE", "tree-structured Parzen estimator (kernel densities)", False,
           _single(baselines.TPE), _KDE),
    Method("REA", "regularized evolution", False, _single(baselines.REA), _REA),
    Method("BORE", "BO by density-ratio estimation", False, _with_searcher(_bore_searcher),
           _BORE),
    Method("CQR", "conformal quantile regression surrogate", False,
           _with_searcher(_cqr_searcher), _CQR),
    Method("ASHA", "asynchronous successive halving, random proposals", True,
           _multi(baselines.ASHA), _ASHA),
    Method("BOHB", "ASHA with kernel-density proposals", True, _multi(baselines.BOHB),
           (*_ASHA, *_KDE)),
    Method("MOBSTER", "ASHA with Gaussian-process proposals", True, _mobster, _MOBSTER),
    Method("ASHABORE", "ASHA with BORE proposals", True, _multi(baselines.ASHABORE), _ASHA),
    Method("ASHACQR", "ASHA with conformal quantile regression proposals", True,
           _multi(baselines.ASHACQR), _ASHA),
)

METHODS: Mapping[str, Method] = MappingProxyType({m.name: m for m in _METHODS})


@cache
def all_methods() -> Mapping[str, Method]:
    """The built-in methods, then those of installed packages (entry points, loaded once)."""
    from stbench.methods.plugins import load_plugins

    return MappingProxyType({**METHODS, **{m.name: m for m in load_plugins(METHODS)}})


def get_method(name: str) -> Method:
    """The method of a name (a variant's label is `MethodArgs.parse`d first); installed
    packages are loaded only for a name that is not built in."""
    methods = METHODS if name in METHODS else all_methods()
    try:
        return methods[name]
    except KeyError:
        raise UserError(
            f"unknown method '{name}'; valid ones: {', '.join(methods)}"
            f"{did_you_mean(name, methods)}"
        ) from None


def check_variant(args: MethodArgs) -> MethodArgs:
    """The canonical variant: its method exists and its settings fit (one-line errors)."""
    return get_method(args.method).check(args)


def variant_settings(label: str) -> dict[str, Any]:
    """Every setting of a variant, defaults included (None: decided by the method): what
    metadata.json records, so a result says how its method was configured."""
    args = MethodArgs.parse(label)
    return dict(get_method(args.method).values(args))


def variant_scheduler(label: str, context: MethodContext) -> TrialScheduler:
    """The scheduler of a variant label, as `ExperimentSpec.variants()` labels them."""
    args = MethodArgs.parse(label)
    return get_method(args.method).make_scheduler(context, args)
