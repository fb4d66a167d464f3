"""Anderson-accelerated fixed-point iteration (plumbing for the deep chains of docs/theory.md §2d).

``sweep(x)`` returns (F(x), aux) or None when x leaves the feasible set; the iteration stops when
|F(x) - x| <= tol max(|x|, |F(x)|). An accelerated candidate that is infeasible is replaced by damped
plain steps (and the history restarts); so does a stagnating history (no new best residual in
STALL iterations), from the best point so far. A failure after the start carries that best point
(``error.best``: x and sweep(x)), from which a caller's fallback solver can start.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConvergenceError

#: history length of the Anderson acceleration
MEMORY = 6
#: iterations without a new best residual before the history restarts from the best point
STALL = 25


def best_or(error, x):
    """Where a fallback solver starts after ``solve`` failed with ``error``: the best point it reached, else x."""
    best = getattr(error, "best", None)
    return x if best is None else best[0]


def solve(sweep, x, chi, tol=1e-13, maxiter=2000, what="adaptive: the deep chain"):
    """(x*, aux at x*, iterations, relative residual). Gives up after maxiter iterations or 3 maxiter
    sweeps (infeasible candidates count), so that a step too far fails fast and the ladder splits it."""
    budget = [3 * maxiter]

    def fail(message, diagnostics):
        err = ConvergenceError(message, {"chi": chi, **diagnostics})
        err.best = best[1:] if best[1] is not None else None
        return err

    def evaluate(v):
        budget[0] -= 1
        if budget[0] < 0:
            raise fail(f"{what} did not converge (too many infeasible steps)", {"sweeps": 3 * maxiter})
        return sweep(v)

    best = (np.inf, None, None)
    out = evaluate(x)
    if out is None:
        raise ConvergenceError(f"{what}: infeasible start (a layer's adapted law is not valid)", {"chi": chi})
    # the history: differences of iterates and of residuals, rows of two ring buffers
    dX, dF = np.empty((MEMORY, x.size)), np.empty((MEMORY, x.size))
    filled, slot = 0, 0
    x_prev = g_prev = None
    res, since = np.inf, 0
    for it in range(1, maxiter + 1):
        new, aux = out
        g = new - x
        scale = max(np.linalg.norm(x), np.linalg.norm(new), 1e-300)
        res = np.linalg.norm(g) / scale
        if res <= tol or x.size == 0:
            return x, aux, it, res
        if res < best[0]:
            best, since = (res, x, out), 0
        else:
            since += 1
        damp = 1.0
        if since >= STALL:  # restart from the best point with a half step
            filled, slot, x_prev, since, damp = 0, 0, None, 0, 0.5
            x, out = best[1], best[2]
            g = out[0] - x
        if x_prev is not None:
            np.subtract(x, x_prev, out=dX[slot])
            np.subtract(g, g_prev, out=dF[slot])
            slot, filled = (slot + 1) % MEMORY, min(filled + 1, MEMORY)
        x_prev, g_prev = x, g
        cand = x + damp * g
        if filled:  # type II: least squares over the residual differences, via their Gram matrix
            Fm, Xm = dF[:filled], dX[:filled]
            gamma = np.linalg.lstsq(Fm @ Fm.T, Fm @ g, rcond=1e-12)[0]
            cand -= gamma @ Xm + gamma @ Fm
        trial = evaluate(cand)
        if trial is None:  # the accelerated step left the feasible set: a damped plain step
            filled, slot, x_prev = 0, 0, None
            for t in (1.0, 0.5, 0.25, 0.125, 0.0625):
                cand = x + t * g
                trial = evaluate(cand)
                if trial is not None:
                    break
            else:
                raise fail(f"{what} left the feasible set (a layer's adapted law is not valid)", {"iterations": it})
        x, out = cand, trial
    raise fail(f"{what} did not converge", {"iterations": maxiter, "residual": res})
