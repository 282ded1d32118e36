"""Gaussian-process searchers for the "BO" and "MOBSTER" methods.

Syne Tune 0.16 dropped its GP-based BayesianOptimization and MOBSTER; these replacements model
the metric with the GP of `gp_model` (scikit-learn, Matern 5/2 ARD), maximize expected
improvement over random and local candidates refined by a local search, and add
kriging-believer fantasies so asynchronous workers get distinct configs. Metrics arrive
sign-adjusted from the schedulers, so both searchers always minimize.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.gaussian_process.kernels import Kernel
from syne_tune.optimizer.schedulers.asha import AsynchronousSuccessiveHalving
from syne_tune.optimizer.schedulers.searchers.searcher import BaseSearcher
from syne_tune.optimizer.schedulers.searchers.single_objective_searcher import (
    SingleObjectiveBaseSearcher,
)
from syne_tune.optimizer.schedulers.single_objective_scheduler import SingleObjectiveScheduler

from stbench.methods.gp_model import ConfigEncoder, Posterior, expected_improvement, fit_kernel
from stbench.methods.gp_resource_kernel import fit_exp_decay_sum
from stbench.model.seeding import spawn_seeds

NUM_CANDIDATES = 250  # uniform random candidates per suggestion (Syne Tune 0.13: 250)
NUM_LOCAL_ANCHORS = 5  # best observed configs whose neighbourhoods are searched
LOCAL_FRACTION = 0.4  # candidates around those anchors, relative to num_candidates
# Local search after scoring (Syne Tune 0.13 runs L-BFGS on EI from its best candidate): each
# round scores REFINE_SIZE steps around the NUM_REFINED best candidates so far, at these step
# sizes in the unit cube. 250 + 100 + 3 x 32 scored candidates reach a higher EI than 600
# random and local ones did (test_proposal_maximizes_expected_improvement), at 3/4 the cost.
REFINE_SCALES = ((0.1, 0.03), (0.03, 0.01), (0.01, 0.003))
NUM_REFINED = 3
REFINE_SIZE = 32
# Below this many points every suggestion refits the hyperparameters, also searching from the
# default kernel: with few points the likelihood has poor local optima a warm start stays in
# (bench/quality.py: BO's final regret on synthetic_curves 0.073 -> 0.042, Syne Tune 0.13
# 0.032), and a fit is cheap.
ALWAYS_REFIT_BELOW = 50
# From then on the hyperparameters are refitted (warm start and default kernel) only once the
# observations have grown by this factor since the last refit; in between, new data is
# conditioned on with the last kernel. The likelihood search on up to 200 points was most of a
# simulated MOBSTER study's time (docs/simulated.md).
REFIT_GROWTH = 1.2
# MOBSTER's model of the resource: one Matern 5/2 kernel over (config, log resource), or
# Syne Tune 0.13's default, f(x) + a shared exponential-decay curve (`gp_resource_kernel`).
RESOURCE_KERNELS = ("matern", "exp-decay-sum")


class _GPEIMixin:
    """State and logic shared by both searchers: pending configs, candidates, GP fit and EI."""

    def _setup(self, num_candidates: int, max_fit_points: int, thompson_start: bool,
               gp_priors: bool, exp_decay: bool = False) -> None:
        self._encoder = ConfigEncoder(self.config_space)
        self._thompson_start = thompson_start
        self._gp_priors = gp_priors  # MAP under Syne Tune 0.13's priors, not max likelihood
        self._exp_decay = exp_decay  # gp_resource_kernel's model instead of one Matern
        self._rng = np.random.default_rng(self.random_seed)
        self._num_candidates = num_candidates
        self._max_fit_points = max_fit_points
        self._pending: list[dict[str, Any]] = []  # suggested without a result yet, oldest first
        self._trial_configs: dict[int, dict[str, Any]] = {}
        self._trial_keys: set[tuple] = set()  # keys of _trial_configs, kept as they come
        self._failed: set[tuple] = set()
        self._kernel: Kernel | None = None  # last fitted kernel, warm-starts the next fit
        self._num_fits = 0  # hyperparameter (marginal-likelihood) searches so far
        self._observed_at_fit = 0  # observations when the hyperparameters were last fitted
        self._gp_cache: tuple[bytes, Posterior] | None = None
        self.points_to_evaluate = [self._encoder.complete(p) for p in self.points_to_evaluate]

    def _seen(self) -> set[tuple]:
        key = self._encoder.key
        return self._trial_keys | self._failed | {key(c) for c in self._pending}

    def _emit(self, config: dict[str, Any] | None) -> dict[str, Any] | None:
        if config is not None:
            self._pending.append(config)
            return dict(config)
        return None

    def _initial_or_random(self) -> dict[str, Any] | None:
        config = self._next_points_to_evaluate()  # type: ignore[attr-defined]
        return self._emit(config if config is not None else self._random_unseen())

    def _random_unseen(self) -> dict[str, Any] | None:
        seen = self._seen()
        if len(seen) >= self._encoder.size:
            return None  # finite space exhausted: tells the tuner to stop
        configs = self._encoder.decode(self._rng.random((64, self._encoder.dim)))
        fresh = [c for c in configs if self._encoder.key(c) not in seen]
        return fresh[0] if fresh else configs[0]

    def _register(self, trial_id: int, config: dict[str, Any]) -> None:
        """Maps the trial to its config; its first result ends its pending state."""
        if trial_id in self._trial_configs:
            return
        self._trial_configs[trial_id] = full = {**self.config_space, **config}
        key = self._encoder.key(full)
        self._trial_keys.add(key)
        for i, c in enumerate(self._pending):
            if self._encoder.key(c) == key:
                del self._pending[i]
                break

    def on_trial_error(self, trial_id: int) -> None:
        """Drops the pending entry and never proposes the failed config again."""
        config = self._trial_configs.get(trial_id)
        if config is None:
            if not self._pending:
                return
            config = self._pending.pop(0)  # unknown trial: assume the oldest pending one
        else:
            key = self._encoder.key(config)
            self._pending = [c for c in self._pending if self._encoder.key(c) != key]
        self._failed.add(self._encoder.key(config))

    def _subsample(self, y: np.ndarray, must: np.ndarray) -> np.ndarray:
        """Keeps the GP cubic cost bounded: best `must` rows first, random others after."""
        n, cap = len(y), self._max_fit_points
        if n <= cap:
            return np.arange(n)
        keep = np.flatnonzero(must)
        keep = keep[np.argsort(y[keep], kind="stable")][:cap]
        rest = np.setdiff1d(np.arange(n), keep)
        extra = self._rng.choice(rest, size=cap - len(keep), replace=False)
        return np.sort(np.concatenate([keep, extra]))

    def _fit(self, X: np.ndarray, y: np.ndarray) -> Posterior:
        digest = X.tobytes() + y.tobytes()
        if self._gp_cache is not None and self._gp_cache[0] == digest:
            return self._gp_cache[1]  # only pending configs changed: reuse hyperparameters
        observed = len(self._metrics)  # type: ignore[attr-defined]
        if (self._kernel is not None and len(y) >= ALWAYS_REFIT_BELOW
                and observed < REFIT_GROWTH * self._observed_at_fit):
            posterior = Posterior(self._kernel, X, y)
        else:
            # Warm-starting from the last fit converges in a few steps; also searching from the
            # default kernel guards against a poor local optimum.
            self._num_fits += 1
            self._observed_at_fit = observed
            restart = self._kernel is not None
            self._kernel = (
                fit_exp_decay_sum(X, y, self._kernel, restart, self._gp_priors)
                if self._exp_decay else
                fit_kernel(X, y, self._kernel, restart, self._gp_priors))
            posterior = Posterior(self._kernel, X, y)
        self._gp_cache = (digest, posterior)
        return posterior

    def _propose(self, X: np.ndarray, y: np.ndarray, X_pending: np.ndarray, best: float,
                 anchors: np.ndarray, resource: float | None = None) -> dict[str, Any] | None:
        """Fits the GP, adds kriging-believer fantasies, returns the unseen EI maximizer among
        random candidates, steps around the best observed configs, and a local search from
        the best candidates. Candidates stay arrays; only the winner becomes a config.

        With `thompson_start` (MOBSTER), as in Syne Tune 0.13, the local search starts from
        the candidate that wins one independent draw from the posterior instead: the proposal
        is a local EI maximum in a region the model only may find good, which explores more
        (docs/quality.md: on hartmann6_curves, 30 seeds, MOBSTER's regret at 50 / 100 % of the
        budget 0.43 / 0.23 -> 0.35 / 0.15; on synthetic_curves 0.0072 -> 0.0121 at 100 %).
        BO keeps the global maximum: there it cost 0.042 -> 0.058 on synthetic_curves and
        gained nothing on hartmann6_curves; MOBSTER's proposals mostly stop early, so
        exploring costs it less."""
        posterior = self._fit(X, y).with_pending(X_pending)
        enc = self._encoder

        def score(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            snapped = enc.snap(raw)
            features = snapped if resource is None else np.hstack(
                [snapped, np.full((len(snapped), 1), resource)])
            mu, sigma = posterior.predict(features)
            return snapped, expected_improvement(mu, sigma, best), mu, sigma

        raw = [self._rng.random((self._num_candidates, enc.dim))]  # uniform over the space
        n_local = int(LOCAL_FRACTION * self._num_candidates)
        if len(anchors) and n_local:
            raw.append(enc.perturb(self._rng, anchors, n_local))
        candidates, ei, mu, sigma = score(np.vstack(raw))
        num_refined = NUM_REFINED
        if self._thompson_start:
            start = int(np.argmin(mu + sigma * self._rng.standard_normal(len(mu))))
            candidates, ei, num_refined = candidates[start:start + 1], ei[start:start + 1], 1
        for scales in REFINE_SCALES:
            top = candidates[np.argsort(-ei, kind="stable")[:num_refined]]
            steps, steps_ei, _, _ = score(enc.perturb(self._rng, top, REFINE_SIZE, scales))
            candidates, ei = np.vstack([candidates, steps]), np.concatenate([ei, steps_ei])
        seen = self._seen()
        for i in np.argsort(-ei, kind="stable"):
            config = enc.decode(candidates[i:i + 1])[0]
            if enc.key(config) not in seen:
                return config
        return self._random_unseen()


class GPEISearcher(_GPEIMixin, SingleObjectiveBaseSearcher):
    """Single-fidelity GP Bayesian optimization with expected improvement.

    A trial's latest reported metric is its observation (its final one once complete).
    """

    def __init__(
        self,
        config_space: dict[str, Any],
        points_to_evaluate: list[dict[str, Any]] | None = None,
        random_seed: int | None = None,
        num_initial_random: int | None = None,
        num_candidates: int = NUM_CANDIDATES,
        max_fit_points: int = 200,
        thompson_start: bool = False,
        gp_priors: bool = False,
    ):
        super().__init__(config_space, points_to_evaluate=points_to_evaluate,
                         random_seed=random_seed)
        self._setup(num_candidates, max_fit_points, thompson_start, gp_priors)
        # d + 1 random configs, d the number of hyperparameters (not of one-hot columns: on
        # fcnet's 9 choices that were 35 of a 50-trial budget, behind Syne Tune 0.13's BO;
        # docs/quality.md)
        default_init = max(4, len(self._encoder.names) + 1)
        self.num_initial_random = default_init if num_initial_random is None else num_initial_random
        self._metrics: dict[int, float] = {}

    def suggest(self, **kwargs: Any) -> dict[str, Any] | None:
        if self.points_to_evaluate or len(self._metrics) < self.num_initial_random:
            return self._initial_or_random()
        ids = list(self._metrics)
        X = self._encoder.encode([self._trial_configs[i] for i in ids])
        y = np.array([self._metrics[i] for i in ids])
        order = np.argsort(y, kind="stable")
        must = np.zeros(len(y), dtype=bool)
        must[order[: self._max_fit_points // 2]] = True
        idx = self._subsample(y, must)
        anchors = X[order[:NUM_LOCAL_ANCHORS]]
        X_pending = self._encoder.encode(self._pending)
        return self._emit(self._propose(X[idx], y[idx], X_pending, float(y.min()), anchors))

    def on_trial_result(self, trial_id: int, config: dict[str, Any], metric: float) -> None:
        self._register(trial_id, config)
        if math.isfinite(metric):
            self._metrics[trial_id] = float(metric)

    def on_trial_complete(self, trial_id: int, config: dict[str, Any], metric: float) -> None:
        self.on_trial_result(trial_id, config, metric)


class MultiFidelityGPEISearcher(_GPEIMixin, BaseSearcher):
    """MOBSTER-style searcher for ASHA: one joint GP over (config, log resource).

    EI is taken at the largest resource level with at least d + 1 trials (BOHB's rule), against
    the best observation at that level, from a Thompson-drawn start (`_propose`); until such a
    level exists, configs are random. With
    `resource_levels` (the rung levels), only a trial's first report at or beyond each level is
    modelled, like Syne Tune's former searcher_data="rungs": per-epoch reports would bloat the GP
    and scatter observations over levels no other trial shares.
    """

    def __init__(
        self,
        config_space: dict[str, Any],
        points_to_evaluate: list[dict[str, Any]] | None = None,
        random_seed: int | None = None,
        num_candidates: int = NUM_CANDIDATES,
        resource_levels: Sequence[float] | None = None,
        max_fit_points: int = 200,
        thompson_start: bool = True,
        gp_priors: bool = False,
        resource_kernel: str = "matern",
        num_initial_random: int | None = None,
    ):
        super().__init__(config_space, points_to_evaluate=points_to_evaluate,
                         random_seed=random_seed)
        if resource_kernel not in RESOURCE_KERNELS:
            raise ValueError(f"resource_kernel must be one of {RESOURCE_KERNELS}")
        self._setup(num_candidates, max_fit_points, thompson_start, gp_priors,
                    exp_decay=resource_kernel == "exp-decay-sum")
        self.resource_levels = sorted(map(float, resource_levels)) if resource_levels else None
        self._metrics: dict[tuple[int, float], float] = {}  # latest per (trial, level)
        # reports at one level before the GP proposes (BOHB's rule: d + 1)
        self.num_initial_random = (self._encoder.dim + 1 if num_initial_random is None
                                   else num_initial_random)

    def _target_level(self) -> float | None:
        counts = Counter(level for _, level in self._metrics)
        eligible = [lvl for lvl, n in counts.items() if n >= self.num_initial_random]
        return max(eligible) if eligible else None

    def _resource_feature(self, levels: np.ndarray) -> np.ndarray:
        """log1p keeps level 0 finite; scaled to [0, 1] over the known or observed range.
        The exp-decay model takes the level over the largest one, as Syne Tune 0.13 did."""
        seen = self.resource_levels or [lvl for _, lvl in self._metrics]
        if self._exp_decay:
            return (levels / max(max(seen), 1e-12))[:, None]
        low, high = math.log1p(min(seen)), math.log1p(max(seen))
        span = high - low if high > low else 1.0
        return ((np.log1p(levels) - low) / span)[:, None]

    def suggest(self, **kwargs: Any) -> dict[str, Any] | None:
        level = self._target_level()
        if self.points_to_evaluate or level is None:
            return self._initial_or_random()
        keys = list(self._metrics)
        levels = np.array([lvl for _, lvl in keys], dtype=float)
        configs = self._encoder.encode([self._trial_configs[t] for t, _ in keys])
        X = np.hstack([configs, self._resource_feature(levels)])
        y = np.array([self._metrics[k] for k in keys])
        at_level = levels == level
        idx = self._subsample(y, at_level)
        rows = np.flatnonzero(at_level)
        rows = rows[np.argsort(y[rows], kind="stable")]
        anchors = configs[rows[:NUM_LOCAL_ANCHORS]]
        r = float(self._resource_feature(np.array([level]))[0, 0])
        X_pending = self._encoder.encode(self._pending)
        X_pending = np.hstack([X_pending, np.full((len(X_pending), 1), r)])
        best = float(y[at_level].min())
        return self._emit(self._propose(X[idx], y[idx], X_pending, best, anchors, resource=r))

    def on_trial_result(self, trial_id: int, config: dict[str, Any], metric: float,
                        resource_level: float) -> None:
        self._register(trial_id, config)
        level = float(resource_level)
        if self.resource_levels is not None:
            reached = [r for r in self.resource_levels if r <= level]
            if not reached or (level != reached[-1] and (trial_id, reached[-1]) in self._metrics):
                return  # below the first rung, or not the first report beyond this rung
            level = reached[-1]
        if math.isfinite(metric):
            self._metrics[(trial_id, level)] = float(metric)

    def on_trial_complete(self, trial_id: int, config: dict[str, Any], metric: float,
                          resource_level: float) -> None:
        self.on_trial_result(trial_id, config, metric, resource_level)


def _rung_levels(grace_period: float, max_t: float, reduction_factor: float) -> list[float]:
    """Rung levels as ASHA's single bracket computes them, plus max_t."""
    num = int(math.log(max_t / grace_period) / math.log(reduction_factor) + 1)
    return sorted({grace_period * reduction_factor**k for k in range(num)} | {max_t})


def make_bo_scheduler(
    config_space: dict[str, Any],
    metric: str,
    do_minimize: bool,
    random_seed: int,
    points_to_evaluate: list[dict[str, Any]] | None,
    num_initial_random: int | None = None,
) -> SingleObjectiveScheduler:
    """GP-EI Bayesian optimization: every trial runs to the full resource."""
    searcher_seed, scheduler_seed = spawn_seeds(random_seed, 2)
    searcher = GPEISearcher(config_space, points_to_evaluate, random_seed=searcher_seed,
                            num_initial_random=num_initial_random)
    return SingleObjectiveScheduler(config_space, metric=metric, do_minimize=do_minimize,
                                    searcher=searcher, random_seed=scheduler_seed)


def make_mobster_scheduler(
    config_space: dict[str, Any],
    metric: str,
    do_minimize: bool,
    random_seed: int,
    points_to_evaluate: list[dict[str, Any]] | None,
    time_attr: str,
    max_t: int,
    grace_period: int = 1,
    reduction_factor: float = 3,
    num_initial_random: int | None = None,
    resource_kernel: str = "matern",
) -> AsynchronousSuccessiveHalving:
    """MOBSTER: asynchronous successive halving with joint-GP proposals."""
    if not 0 < grace_period <= max_t or reduction_factor <= 1:
        raise ValueError(f"grace_period must be in 1..{max_t} (max_t) and reduction_factor "
                         "above 1")
    levels = _rung_levels(grace_period, max_t, reduction_factor)
    searcher_seed, scheduler_seed = spawn_seeds(random_seed, 2)
    searcher = MultiFidelityGPEISearcher(config_space, points_to_evaluate,
                                         random_seed=searcher_seed, resource_levels=levels,
                                         resource_kernel=resource_kernel,
                                         num_initial_random=num_initial_random)
    return AsynchronousSuccessiveHalving(
        config_space, metric=metric, do_minimize=do_minimize, searcher=searcher,
        time_attr=time_attr, max_t=max_t, grace_period=grace_period,
        reduction_factor=reduction_factor, random_seed=scheduler_seed,
    )
