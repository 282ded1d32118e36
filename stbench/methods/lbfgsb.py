"""`scipy.optimize.minimize(..., jac=True, method="L-BFGS-B")` for the GP searchers'
hyperparameter fits, driving the same L-BFGS-B routine (`setulb`) with the same arguments
and stopping rules, so it takes the same steps to the same result, without the wrappers
scipy puts around every evaluation (function and gradient memos, a result object per
iteration, its argument checks): those cost as much as the likelihood on the few dozen
points most fits have.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.optimize import _lbfgsb  # the routine scipy.optimize.minimize calls

MAXCOR = 10  # scipy's defaults for L-BFGS-B
FTOL = 2.2204460492503131e-09
GTOL = 1e-5
MAXLS = 20
Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]


def minimize_lbfgsb(objective: Objective, x0: np.ndarray,
                    bounds: Sequence[Sequence[float]] | np.ndarray, maxiter: int,
                    maxfun: int) -> tuple[np.ndarray, float]:
    """(x, f(x)) where L-BFGS-B stops, minimizing `objective` (value and gradient) within
    finite or infinite `bounds` (one (low, high) per coordinate)."""
    low, high = (np.array([float(b[i]) for b in bounds]) for i in (0, 1))
    if (low > high).any():
        raise ValueError("a lower bound is above its upper bound")
    x = np.array(np.clip(np.asarray(x0).ravel(), low, high), dtype=np.float64)
    n = len(x)
    nbd = np.zeros(n, np.int32)  # 0 unbounded, 1 low only, 2 both, 3 high only
    low_bound, high_bound = np.zeros(n), np.zeros(n)
    for i in range(n):
        has_low, has_high = not np.isinf(low[i]), not np.isinf(high[i])
        low_bound[i] = low[i] if has_low else 0.0
        high_bound[i] = high[i] if has_high else 0.0
        nbd[i] = {(False, False): 0, (True, False): 1, (True, True): 2, (False, True): 3}[
            (has_low, has_high)]
    evaluated = x.copy()  # scipy evaluates at the start, then asks for f and g there
    last = _evaluate(objective, evaluated)
    nfev, iterations = 1, 0
    f, g = np.array(0.0), np.zeros(n)
    m = MAXCOR
    factr = FTOL / np.finfo(float).eps
    wa = np.zeros(2 * m * n + 5 * n + 11 * m * m + 8 * m)
    iwa = np.zeros(3 * n, np.int32)
    task, ln_task = np.zeros(2, np.int32), np.zeros(2, np.int32)
    lsave, isave, dsave = np.zeros(4, np.int32), np.zeros(44, np.int32), np.zeros(29)
    while True:
        g = g.astype(np.float64)
        _lbfgsb.setulb(m, x, low_bound, high_bound, nbd, f, g, factr, GTOL, wa, iwa, task,
                       lsave, isave, dsave, MAXLS, ln_task)
        if task[0] == 3:  # wants f and g at x
            if not np.array_equal(x, evaluated):
                evaluated = x.astype(np.float64)
                last = _evaluate(objective, evaluated)
                nfev += 1
            f, g = last
        elif task[0] == 1:  # a new iterate
            iterations += 1
            if iterations >= maxiter:
                task[0], task[1] = 5, 504
            elif nfev > maxfun:
                task[0], task[1] = 5, 502
        else:
            return x, float(f)


def _evaluate(objective: Objective, x: np.ndarray) -> tuple[float, np.ndarray]:
    value, gradient = objective(np.copy(x))
    if not np.isscalar(value):
        value = np.asarray(value).item()
    return value, np.atleast_1d(np.copy(gradient))
