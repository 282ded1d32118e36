"""A Freeze-Thaw style GP over (config, resource) for MOBSTER: the variant of `gp_model`'s one
stationary Matern kernel over (config, log resource) that Syne Tune 0.13's MOBSTER used by
default ("exp-decay-sum"; Swersky et al. 2014, Tiao et al. 2020).

The metric is modelled as f(x) + g(r): a Matern 5/2 ARD function of the config that every
resource level informs in full, plus one learning-curve term shared by all configs,
g(r) ~ GP(c + sqrt(v) kappa(r), v (kappa(r + r') - kappa(r) kappa(r'))) with
kappa(r) = (beta / (r + beta))^alpha, beta = alpha / lam: the Laplace transform of a Gamma
mixture of exponential decays. r is the level over the largest level, in (0, 1].
Written from the papers' formulas, with its own likelihood gradient so fits stay cheap.
"""

from __future__ import annotations

import math

import numpy as np

from stbench.methods.gp_model import (
    JITTER,
    MAX_OPT_ITER,
    SQRT5,
    log_prior,
)
from stbench.methods.lapack import cho_solve_lower, cholesky_lower
from stbench.methods.lbfgsb import minimize_lbfgsb

# theta = log(scale), log(length scales)..., log(v), log(alpha), log(lam), log(noise), c
LENGTH_BOUNDS = (1e-2, 1e2)
BOUNDS_HEAD = [(1e-2, 1e2)]  # signal variance of f(x), as `gp_model.make_kernel`
BOUNDS_TAIL = [(1e-6, 1e1), (1e-4, 250.0), (1e-4, 50.0), (1e-6, 1.0)]  # v, alpha, lam, noise
MEAN_BOUNDS = (-10.0, 10.0)  # c, in units of the normalized targets
DEFAULT_TAIL = (0.25, 1.0, 0.5, 1e-2)  # v, alpha, lam, noise (0.13: gamma 0.5, alpha 1, 0.5)


def _kappa(r: np.ndarray, alpha: float, lam: float) -> np.ndarray:
    beta = alpha / lam
    return (beta / (r + beta)) ** alpha


def _dlog_kappa(r: np.ndarray, alpha: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """d log kappa / d log alpha and d log kappa / d log lam (beta = alpha / lam moves too)."""
    beta = alpha / lam
    frac = alpha * r / (r + beta)
    return alpha * np.log(beta / (r + beta)) + frac, -frac


class ExpDecaySumKernel:
    """The fitted model's covariance and prior mean, in normalized targets; the interface
    `gp_model.Posterior` uses (`K(X)` with noise, `K(X, Y)`, `diag`, `prior_mean`)."""

    def __init__(self, theta: np.ndarray):
        self.theta = np.asarray(theta, dtype=float)
        logs = self.theta[:-1]
        self.scale, self.lengths = math.exp(logs[0]), np.exp(logs[1:-4])
        self.v, self.alpha, self.lam, self.noise = np.exp(logs[-4:])
        self.c = float(self.theta[-1])

    @staticmethod
    def default_theta(dim: int) -> np.ndarray:
        """dim: config columns (the resource column excluded)."""
        return np.concatenate([[0.0], np.log(np.full(dim, 0.3)), np.log(DEFAULT_TAIL), [0.0]])

    @staticmethod
    def bounds(dim: int) -> list[tuple[float, float]]:
        logged = BOUNDS_HEAD + [LENGTH_BOUNDS] * dim + BOUNDS_TAIL
        return [(math.log(lo), math.log(hi)) for lo, hi in logged] + [MEAN_BOUNDS]

    def _matern(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        diff = (X[:, None, :-1] - Y[None, :, :-1]) / self.lengths
        r = np.sqrt((diff**2).sum(-1))
        return self.scale * (1.0 + SQRT5 * r + 5.0 / 3.0 * r**2) * np.exp(-SQRT5 * r)

    def _resource(self, rx: np.ndarray, ry: np.ndarray) -> np.ndarray:
        k = _kappa
        return self.v * (k(rx[:, None] + ry[None, :], self.alpha, self.lam)
                         - np.outer(k(rx, self.alpha, self.lam), k(ry, self.alpha, self.lam)))

    def __call__(self, X: np.ndarray, Y: np.ndarray | None = None) -> np.ndarray:
        K = self._matern(X, X if Y is None else Y) + self._resource(
            X[:, -1], X[:, -1] if Y is None else Y[:, -1])
        if Y is None:
            K[np.diag_indices_from(K)] += self.noise
        return K

    def diag(self, X: np.ndarray) -> np.ndarray:
        r = X[:, -1]
        kappa = _kappa(r, self.alpha, self.lam)
        return self.scale + self.v * (_kappa(2 * r, self.alpha, self.lam) - kappa**2) + self.noise

    def prior_mean(self, X: np.ndarray) -> np.ndarray:
        return self.c + math.sqrt(self.v) * _kappa(X[:, -1], self.alpha, self.lam)


class ExpDecaySumLikelihood:
    """Negative log marginal likelihood (with `priors`: minus the log posterior of Syne Tune
    0.13's hyperparameter priors) of `ExpDecaySumKernel` on (X, y), y normalized as
    `gp_model.MaternLikelihood` does, and its gradient in theta."""

    def __init__(self, X: np.ndarray, y: np.ndarray, priors: bool = False):
        std = float(y.std()) or 1.0
        self._y, self._X, self._priors = (y - y.mean()) / std, X, priors
        self._sq = (X.T[:-1, :, None] - X.T[:-1, None, :]) ** 2  # (d, n, n)
        self._r = X[:, -1]

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        kern = ExpDecaySumKernel(theta)
        K = kern(self._X)
        K[np.diag_indices_from(K)] += JITTER
        try:
            L = cholesky_lower(K)
        except np.linalg.LinAlgError:
            return math.inf, np.zeros_like(theta)
        r, a, lam = self._r, kern.alpha, kern.lam
        kappa, (da, dl) = _kappa(r, a, lam), _dlog_kappa(r, a, lam)
        rsum = r[:, None] + r[None, :]
        k12, (da12, dl12) = _kappa(rsum, a, lam), _dlog_kappa(rsum, a, lam)
        residual = self._y - kern.prior_mean(self._X)
        alpha = cho_solve_lower(L, residual)
        nll = (0.5 * residual @ alpha + np.log(np.diag(L)).sum()
               + 0.5 * len(residual) * math.log(2 * math.pi))
        W = np.outer(alpha, alpha) - cho_solve_lower(L, np.eye(len(K)))
        inverse_sq = kern.lengths**-2.0
        dist = np.sqrt(np.tensordot(inverse_sq, self._sq, axes=1))
        decay = np.exp(-SQRT5 * dist)
        matern = kern.scale * (1.0 + SQRT5 * dist + 5.0 / 3.0 * dist**2) * decay
        by_length = W * (kern.scale * 5.0 / 3.0 * (1.0 + SQRT5 * dist) * decay)
        outer = np.outer(kappa, kappa)
        d_kernel = [
            np.sum(W * matern),
            *(self._sq.reshape(len(inverse_sq), -1) @ by_length.ravel() * inverse_sq),
            np.sum(W * kern.v * (k12 - outer)),
            np.sum(W * kern.v * (k12 * da12 - outer * (da[:, None] + da[None, :]))),
            np.sum(W * kern.v * (k12 * dl12 - outer * (dl[:, None] + dl[None, :]))),
            kern.noise * np.trace(W),
        ]
        mean_part = math.sqrt(kern.v) * kappa  # the prior mean's derivatives
        d_mean = np.zeros(len(theta))
        d_mean[-5:] = [0.5 * mean_part @ alpha, mean_part * da @ alpha,
                       mean_part * dl @ alpha, 0.0, alpha.sum()]
        grad = -0.5 * np.array(d_kernel + [0.0]) - d_mean
        if self._priors:
            value, d_scale, d_noise = log_prior(theta[0], theta[-2])
            nll -= value
            grad[0] -= d_scale
            grad[-2] -= d_noise
        return float(nll), grad


def fit_exp_decay_sum(X: np.ndarray, y: np.ndarray, start: ExpDecaySumKernel | None,
                      restart: bool, priors: bool = False) -> ExpDecaySumKernel:
    """Hyperparameters by L-BFGS from `start` (None: the defaults) and, with `restart`, also
    from the defaults, keeping the better, as `gp_model.fit_kernel`."""
    dim = X.shape[1] - 1
    default = ExpDecaySumKernel.default_theta(dim)
    starts = [default] if start is None else [start.theta, default][: 2 if restart else 1]
    objective, bounds = ExpDecaySumLikelihood(X, y, priors), ExpDecaySumKernel.bounds(dim)
    runs = [minimize_lbfgsb(objective, t, bounds, MAX_OPT_ITER, 2 * MAX_OPT_ITER)
            for t in starts]
    return ExpDecaySumKernel(min(runs, key=lambda run: run[1])[0])
