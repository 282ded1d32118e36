"""LAPACK directly, as scipy.linalg's cholesky, cho_solve and solve_triangular call it (same
routines, same results) without their input checks and batch wrappers: those cost more than
the factorization itself on the GP's few dozen points, thousands of times per experiment."""

from __future__ import annotations

import numpy as np
from scipy.linalg.lapack import dpotrf, dpotri, dpotrs, dtrtrs


def cholesky_lower(K: np.ndarray) -> np.ndarray:
    """The lower Cholesky factor of K (Fortran order); LinAlgError if K is not positive
    definite, as scipy.linalg.cholesky(K, lower=True)."""
    L, info = dpotrf(K, lower=1, clean=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"cholesky failed (LAPACK potrf info {info})")
    return L


def cho_solve_lower(L: np.ndarray, b: np.ndarray) -> np.ndarray:
    """K^-1 b from K's lower Cholesky factor (scipy.linalg.cho_solve((L, True), b))."""
    x, info = dpotrs(L, b, lower=1)
    if info != 0:
        raise ValueError(f"LAPACK potrs info {info}")
    return x


def solve_lower(L: np.ndarray, b: np.ndarray) -> np.ndarray:
    """L^-1 b for a lower triangular L in Fortran order (scipy.linalg.solve_triangular)."""
    x, info = dtrtrs(L, b, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"singular triangular matrix (LAPACK trtrs info {info})")
    return x


def inverse_from_cholesky(L: np.ndarray) -> np.ndarray:
    """K^-1 from K's lower Cholesky factor: LAPACK's potri, a third of the time of solving
    against the identity (cho_solve(L, I)); the two differ in rounding only."""
    lower, info = dpotri(L, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"singular matrix (LAPACK potri info {info})")
    full = lower + lower.T  # potri leaves the factor's upper triangle, zeros (potrf's clean)
    np.fill_diagonal(full, np.diagonal(lower))
    return full
