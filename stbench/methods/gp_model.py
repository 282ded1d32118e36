"""The Gaussian-process model behind the BO and MOBSTER searchers (`gp_searcher`).

Configs of any mix of Syne Tune domains are encoded into the unit cube, so that one GP with
a Matern 5/2 ARD kernel (scikit-learn's, with our likelihood and posterior) models the metric;
expected improvement scores candidates, and kriging-believer fantasies stand in for the
results of pending configs (`Posterior`: one factorization per data set, reused). Pure
functions, one encoder and an immutable posterior: the searchers keep the state.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
from scipy.spatial.distance import cdist, pdist, squareform
from scipy.special import ndtr
from sklearn.base import clone
from sklearn.gaussian_process.kernels import (
    ConstantKernel,
    Kernel,
    Matern,
    Product,
    Sum,
    WhiteKernel,
)
from syne_tune.config_space import Categorical, Domain, FiniteRange, Float, Integer, Quantized

from stbench.methods.lapack import (
    cho_solve_lower,
    cholesky_lower,
    inverse_from_cholesky,
    solve_lower,
)
from stbench.methods.lbfgsb import minimize_lbfgsb

LOCAL_SCALES = (0.02, 0.07, 0.2)  # perturbation std devs in the unit cube
CATEGORY_FLIP_PROB = 0.2
MAX_OPT_ITER = 50  # L-BFGS iterations per hyperparameter search


class ConfigEncoder:
    """Maps configs to [0, 1]^d and back, so one ARD kernel handles any mix of domains."""

    def __init__(self, config_space: dict[str, Any]):
        self.config_space = config_space
        self.names = [k for k, v in config_space.items() if isinstance(v, Domain)]
        self._cols: dict[str, slice] = {}
        self._numeric: dict[str, tuple[float, float, Any, Any, float | None]] = {}
        col = 0
        for name in self.names:
            dom = config_space[name]
            width = len(dom.categories) if isinstance(dom, Categorical) else 1
            self._cols[name] = slice(col, col + width)
            col += width
            if not isinstance(dom, Categorical):
                self._numeric[name] = self._numeric_spec(dom)
        self.dim = col
        sizes = [len(config_space[n]) for n in self.names]
        self.size = math.prod(sizes) if all(s > 0 for s in sizes) else math.inf

    @staticmethod
    def _numeric_spec(dom: Domain) -> tuple[float, float, Any, Any, float | None]:
        """(low, high, forward, inverse, quantum): the unit interval maps to [low, high]."""
        if isinstance(dom, FiniteRange):  # equally spaced (in its own scale): encode the index
            return -0.5, dom.size - 0.5, None, None, None
        if not isinstance(dom, Float | Integer):
            raise ValueError(f"Unsupported domain for GP searchers: {dom!r}")
        sampler, q = dom.get_sampler(), None
        if isinstance(sampler, Quantized):
            sampler, q = sampler.sampler, sampler.q
        fwd, inv = (lambda x: x), (lambda x: x)
        if isinstance(sampler, Float._LogUniform | Integer._LogUniform):
            fwd, inv = np.log, np.exp
        elif isinstance(sampler, Float._ReverseLogUniform):
            fwd, inv = (lambda x: -np.log1p(-x)), (lambda x: -np.expm1(-x))
        if isinstance(dom, Integer) and fwd is not np.log:  # widened: uniform over the integers
            return dom.lower - 0.5, dom.upper + 0.5, fwd, inv, q
        return float(fwd(dom.lower)), float(fwd(dom.upper)), fwd, inv, q

    def key(self, config: dict[str, Any]) -> tuple:
        return tuple(config[n] for n in self.names)

    def encode(self, configs: list[dict[str, Any]]) -> np.ndarray:
        X = np.zeros((len(configs), self.dim))
        for name in self.names:
            dom, sl = self.config_space[name], self._cols[name]
            values = [c[name] for c in configs]
            if isinstance(dom, Categorical):
                for row, v in enumerate(values):
                    v = v if v in dom.categories else dom.cast(v)
                    X[row, sl.start + dom.categories.index(v)] = 1.0
                continue
            low, high, fwd, _, _ = self._numeric[name]
            if isinstance(dom, FiniteRange):
                t = np.array([dom.values.index(dom.cast(v)) for v in values], dtype=float)
            else:
                t = fwd(np.asarray(values, dtype=float))
            X[:, sl.start] = (t - low) / (high - low) if high > low else 0.5
        return X

    def decode(self, X: np.ndarray) -> list[dict[str, Any]]:
        """Snaps rows of the unit cube to valid configs with plain Python values."""
        columns: dict[str, list[Any]] = {}
        for name in self.names:
            dom, sl = self.config_space[name], self._cols[name]
            if isinstance(dom, Categorical):
                columns[name] = [dom.categories[i] for i in np.argmax(X[:, sl], axis=1)]
                continue
            low, high, _, inv, q = self._numeric[name]
            t = low + np.clip(X[:, sl.start], 0.0, 1.0) * (high - low)
            if isinstance(dom, FiniteRange):
                idx = np.clip(np.rint(t), 0, dom.size - 1).astype(int)
                columns[name] = [dom.values[i] for i in idx]
                continue
            v = inv(t)
            if q is not None:
                v = np.round(v / q) * q
            v = np.clip(v, dom.lower, dom.upper)
            if isinstance(dom, Integer):
                columns[name] = [int(x) for x in np.clip(np.rint(v), dom.lower, dom.upper)]
            else:
                columns[name] = [float(x) for x in v]
        return [
            {k: columns[k][row] if k in columns else v for k, v in self.config_space.items()}
            for row in range(len(X))
        ]

    def complete(self, config: dict[str, Any]) -> dict[str, Any]:
        """Fills missing hyperparameters with the domain midpoint and casts the given ones."""
        out = self.decode(np.full((1, self.dim), 0.5))[0]
        for name in self.names:
            if name in config:
                out[name] = self.config_space[name].cast(config[name])
        return out

    def snap(self, X: np.ndarray) -> np.ndarray:
        """`encode(decode(X))` without building configs: rows of the unit cube moved to the
        encodings of the valid configs they decode to, so candidates are scored where they
        would really be evaluated (integers, quantized values, one category)."""
        out = np.empty_like(X)
        for name in self.names:
            dom, sl = self.config_space[name], self._cols[name]
            if isinstance(dom, Categorical):
                out[:, sl] = np.eye(sl.stop - sl.start)[np.argmax(X[:, sl], axis=1)]
                continue
            low, high, fwd, inv, q = self._numeric[name]
            t = low + np.clip(X[:, sl.start], 0.0, 1.0) * (high - low)
            if isinstance(dom, FiniteRange):
                t = np.clip(np.rint(t), 0, dom.size - 1)
            else:
                v = inv(t)
                if q is not None:
                    v = np.round(v / q) * q
                v = np.clip(v, dom.lower, dom.upper)
                if isinstance(dom, Integer):
                    v = np.clip(np.rint(v), dom.lower, dom.upper)
                t = fwd(v)
            out[:, sl.start] = (t - low) / (high - low) if high > low else 0.5
        return out

    def perturb(self, rng: np.random.Generator, anchors: np.ndarray, n: int,
                scale_choices: tuple[float, ...] = LOCAL_SCALES) -> np.ndarray:
        """Gaussian steps around anchors (numeric) plus random category flips."""
        X = anchors[rng.integers(len(anchors), size=n)].copy()
        scales = rng.choice(scale_choices, size=(n, 1))
        for name in self.names:
            sl = self._cols[name]
            if isinstance(self.config_space[name], Categorical):
                flip = rng.random(n) < CATEGORY_FLIP_PROB
                X[flip, sl] = rng.random((int(flip.sum()), sl.stop - sl.start))
            else:
                X[:, sl.start] += scales[:, 0] * rng.standard_normal(n)
        return np.clip(X, 0.0, 1.0)


SQRT_2PI = np.sqrt(2 * np.pi)  # scipy.stats.norm's pdf constant, so the same values


def expected_improvement(mu: np.ndarray, sigma: np.ndarray, best: float) -> np.ndarray:
    """scipy.stats.norm's cdf and pdf, written out: the same arithmetic without its argument
    handling, which cost more than the formula on a few hundred candidates."""
    sigma = np.maximum(sigma, 1e-12)
    z = (best - mu) / sigma
    return (best - mu) * ndtr(z) + sigma * (np.exp(-z**2 / 2.0) / SQRT_2PI)


def make_kernel(dim: int) -> Kernel:
    matern = Matern(length_scale=np.full(dim, 0.3), length_scale_bounds=(1e-2, 1e2), nu=2.5)
    return ConstantKernel(1.0, (1e-2, 1e2)) * matern + WhiteKernel(1e-2, (1e-6, 1.0))


def fit_kernel(X: np.ndarray, y: np.ndarray, start: Kernel | None,
               restart: bool, priors: bool = False) -> Kernel:
    """`make_kernel`'s kernel with hyperparameters fitted to (X, y), optimized from `start`
    (None: the default kernel) and, with `restart`, also from the default kernel, keeping the
    better; with `priors`, maximizing the posterior of `log_prior`'s priors instead (MAP).
    What scikit-learn's GaussianProcessRegressor.fit does with our optimizer, without the
    factorization it adds after the search, which the searchers' `Posterior` makes anyway."""
    default = make_kernel(X.shape[1])
    objective = MaternLikelihood(X, y, priors)
    kernel = clone(start or default)
    starts = [kernel.theta, default.theta] if restart else [kernel.theta]
    runs = [minimize_lbfgsb(objective, t, kernel.bounds, MAX_OPT_ITER, 2 * MAX_OPT_ITER)
            for t in starts]
    kernel.theta = min(runs, key=lambda run: run[1])[0]
    return kernel


JITTER = 1e-10  # scikit-learn's default `alpha`, so fits and posteriors agree
SQRT5 = math.sqrt(5.0)
NOISE_PRIOR_SHAPE, NOISE_PRIOR_RATE = 0.1, 1.0  # Syne Tune 0.13: Gamma(mean 0.1, shape 0.1)


def log_prior(log_scale: float, log_noise: float) -> tuple[float, float, float]:
    """Syne Tune 0.13's hyperparameter priors, LogNormal(0, 1) on the signal variance and
    Gamma(mean 0.1, shape 0.1) on the noise variance (flat on length scales), as densities
    of the values taken at their logs (as 0.13 does, no Jacobian): (log density up to a
    constant, its derivative in log_scale, in log_noise)."""
    noise = math.exp(log_noise)
    value = (-log_scale - 0.5 * log_scale**2
             + (NOISE_PRIOR_SHAPE - 1.0) * log_noise - NOISE_PRIOR_RATE * noise)
    return value, -1.0 - log_scale, NOISE_PRIOR_SHAPE - 1.0 - NOISE_PRIOR_RATE * noise


class MaternLikelihood:
    """Negative log marginal likelihood of `make_kernel`'s GP on (X, y) and its gradient, in
    the kernel's `theta` (log constant, log length scales, log noise), y normalized as
    scikit-learn's GaussianProcessRegressor(normalize_y=True) does. The same values as
    scikit-learn's, without its general kernel machinery: the per-dimension squared distances
    are computed once per fit, not per evaluation."""

    def __init__(self, X: np.ndarray, y: np.ndarray, priors: bool = False):
        std = float(y.std()) or 1.0
        self._y, self._priors = (y - y.mean()) / std, priors
        self._sq = (X.T[:, :, None] - X.T[:, None, :]) ** 2  # (d, n, n)
        self._sq_rows = self._sq.reshape(len(self._sq), -1)  # (d, n * n), the same memory

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        n = len(self._y)
        scale, lengths, noise = np.exp(theta[0]), np.exp(theta[1:-1]), np.exp(theta[-1])
        inverse_sq = lengths**-2.0
        r = np.sqrt(inverse_sq @ self._sq_rows).reshape(n, n)  # tensordot's own product
        scaled = SQRT5 * r
        decay = np.exp(-scaled)
        linear = 1.0 + scaled
        matern = scale * (linear + 5.0 / 3.0 * r**2) * decay
        K = matern.copy()
        K.flat[:: n + 1] += noise + JITTER
        try:
            L = cholesky_lower(K)
            W = np.outer(alpha := cho_solve_lower(L, self._y), alpha) - inverse_from_cholesky(L)
        except np.linalg.LinAlgError:
            return math.inf, np.zeros_like(theta)
        lml = (-0.5 * self._y @ alpha - np.log(np.diag(L)).sum()
               - 0.5 * n * math.log(2 * math.pi))
        by_length = W * (scale * 5.0 / 3.0 * linear * decay)
        grad = np.concatenate([[np.sum(W * matern)],
                               self._sq_rows @ by_length.ravel() * inverse_sq,
                               [noise * np.trace(W)]])
        if self._priors:  # MAP: the log prior joins the log likelihood
            value, d_scale, d_noise = log_prior(theta[0], theta[-1])
            lml += value
            grad[0] += 2.0 * d_scale
            grad[-1] += 2.0 * d_noise
        return -float(lml), -0.5 * grad


class FittedMatern:
    """`make_kernel`'s kernel with fixed hyperparameters, evaluated without scikit-learn's
    kernel algebra (its Sum, Product and ConstantKernel wrappers took longer than the
    arithmetic on a few hundred candidates): its operations in its order, so its values."""

    def __init__(self, constant: float, length_scale: np.ndarray, noise: float):
        self.constant, self.length_scale, self.noise = constant, length_scale, noise

    @classmethod
    def of(cls, kernel: Any) -> Any:
        """The fast twin of a `make_kernel`-shaped kernel; any other kernel as it is."""
        if (isinstance(kernel, Sum) and isinstance(kernel.k1, Product)
                and isinstance(kernel.k1.k1, ConstantKernel)
                and isinstance(kernel.k1.k2, Matern) and kernel.k1.k2.nu == 2.5
                and isinstance(kernel.k2, WhiteKernel)):
            matern = kernel.k1.k2
            return cls(kernel.k1.k1.constant_value,
                       np.squeeze(matern.length_scale).astype(float), kernel.k2.noise_level)
        return kernel

    @staticmethod
    def _matern(dists: np.ndarray) -> np.ndarray:
        """(1 + K + K**2 / 3) * exp(-K) for K = sqrt(5) * dists, in place (dists is ours)."""
        dists *= math.sqrt(5)
        out = np.square(dists)
        out /= 3.0
        out += 1.0 + dists
        np.negative(dists, out=dists)
        out *= np.exp(dists, out=dists)
        return out

    def __call__(self, X: np.ndarray, Y: np.ndarray | None = None) -> np.ndarray:
        scaled = X / self.length_scale
        if Y is None:
            K = squareform(self._matern(pdist(scaled, metric="euclidean")))
            np.fill_diagonal(K, 1)
            K = self.constant * K
            K[np.diag_indices_from(K)] += self.noise
            return K
        return self.constant * self._matern(
            cdist(scaled, Y / self.length_scale, metric="euclidean"))

    def diag(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(X), self.constant + self.noise)


class Posterior:
    """The GP posterior on (X, y) with `kernel`'s hyperparameters kept (targets normalized as
    by `MaternLikelihood`): one Cholesky factorization, reused for every batch of candidates and for
    pending configs, so scoring costs matrix products rather than refits. A kernel with a
    `prior_mean` (`gp_resource_kernel`) brings its own prior mean; others have mean zero."""

    def __init__(self, kernel: Kernel, X: np.ndarray, y: np.ndarray):
        self.kernel, self.X, self.y = kernel, X, y
        self._k = FittedMatern.of(kernel)
        self._mean = float(y.mean())
        self._std = float(y.std()) or 1.0
        self._prior_mean = getattr(kernel, "prior_mean", lambda X: np.zeros(len(X)))
        K = self._k(X)
        K[np.diag_indices_from(K)] += JITTER
        self._L = cholesky_lower(K)
        self._alpha = cho_solve_lower(self._L,
                                      (y - self._mean) / self._std - self._prior_mean(X))
        self._pending: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def with_pending(self, X_pending: np.ndarray) -> Posterior:
        """Kriging believer: pending configs count as observed at the posterior mean. That
        leaves the mean as it is and shrinks the variance near them, so the next proposal
        moves away; computed as a low-rank update, without refactorizing."""
        out = copy.copy(self)
        if len(X_pending):
            V = solve_lower(self._L, self._k(X_pending, self.X).T)
            S = self._k(X_pending) - V.T @ V
            S[np.diag_indices_from(S)] += JITTER
            out._pending = (X_pending, V, cholesky_lower(S))
        return out

    def predict(self, Xc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation (noise included, as scikit-learn's)."""
        Ks = self._k(Xc, self.X)
        V = solve_lower(self._L, Ks.T)
        var = self._k.diag(Xc) - np.einsum("ij,ij->j", V, V)
        if self._pending is not None:
            Xp, Vp, Lp = self._pending
            cross = solve_lower(Lp, (self._k(Xc, Xp) - V.T @ Vp).T)
            var -= np.einsum("ij,ij->j", cross, cross)
        mu = Ks @ self._alpha + self._prior_mean(Xc)
        return (mu * self._std + self._mean,
                np.sqrt(np.maximum(var, 0.0)) * self._std)
