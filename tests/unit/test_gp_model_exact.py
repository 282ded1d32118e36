"""The GP model's fast paths compute what the library calls they replace computed, to the
bit, so a simulated study gives the same trials as before they were written (the one
exception, the inverse in the likelihood, agrees to rounding: docs/performance.md)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import cho_solve, cholesky, solve_triangular
from scipy.stats import norm

from stbench.methods.gp_model import (
    FittedMatern,
    expected_improvement,
    make_kernel,
)
from stbench.methods.lapack import (
    cho_solve_lower,
    cholesky_lower,
    inverse_from_cholesky,
    solve_lower,
)


def test_expected_improvement_is_scipy_norms_formula_to_the_bit() -> None:
    rng = np.random.default_rng(0)
    mu, sigma = rng.normal(size=500), np.abs(rng.normal(size=500))
    sigma[:5] = 0.0
    best = 0.1
    s = np.maximum(sigma, 1e-12)
    z = (best - mu) / s
    expected = (best - mu) * norm.cdf(z) + s * norm.pdf(z)
    np.testing.assert_array_equal(expected_improvement(mu, sigma, best), expected)


@pytest.mark.parametrize("dim", [1, 4])
def test_fitted_matern_is_scikit_learns_kernel_to_the_bit(dim: int) -> None:
    rng = np.random.default_rng(dim)
    kernel = make_kernel(dim)
    kernel.theta = rng.normal(size=len(kernel.theta)) * 0.5
    fast = FittedMatern.of(kernel)
    assert isinstance(fast, FittedMatern)
    X, Y = rng.random((40, dim)), rng.random((25, dim))
    np.testing.assert_array_equal(fast(X), kernel(X))
    np.testing.assert_array_equal(fast(X, Y), kernel(X, Y))
    np.testing.assert_array_equal(fast.diag(X), kernel.diag(X))


def test_lapack_helpers_are_scipys_calls_to_the_bit() -> None:
    rng = np.random.default_rng(1)
    A = rng.random((30, 30))
    K = A @ A.T + 0.1 * np.eye(30)
    L = cholesky(K, lower=True)
    np.testing.assert_array_equal(cholesky_lower(K), L)
    b, B = rng.random(30), rng.random((30, 7))
    np.testing.assert_array_equal(cho_solve_lower(L, b), cho_solve((L, True), b))
    np.testing.assert_array_equal(solve_lower(L, B), solve_triangular(L, B, lower=True))
    np.testing.assert_allclose(inverse_from_cholesky(L), np.linalg.inv(K), rtol=1e-10,
                               atol=1e-10)
    with pytest.raises(np.linalg.LinAlgError):
        cholesky_lower(-K)


@pytest.mark.parametrize("n", [8, 60])
def test_lbfgsb_driver_takes_scipys_steps_to_the_bit(n: int) -> None:
    from scipy.optimize import minimize

    from stbench.methods.gp_model import MaternLikelihood
    from stbench.methods.lbfgsb import minimize_lbfgsb

    rng = np.random.default_rng(n)
    X = rng.random((n, 3))
    y = np.sin(6 * X[:, 0]) + X[:, 1] ** 2 + 0.1 * rng.normal(size=n)
    objective = MaternLikelihood(X, y)
    kernel = make_kernel(3)
    for start, maxiter in [(kernel.theta, 50), (kernel.theta + 1.5, 50), (kernel.theta, 3)]:
        ours = minimize_lbfgsb(objective, start, kernel.bounds, maxiter, 2 * maxiter)
        theirs = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=kernel.bounds,
                          options={"maxiter": maxiter, "maxfun": 2 * maxiter})
        np.testing.assert_array_equal(ours[0], theirs.x)
        assert ours[1] == theirs.fun
