"""Newton-Krylov solve of a fixed point x = s(x) (plumbing for the deep chains of docs/theory.md §2d).

Each Newton step solves (J_s - I) dx = -(s(x) - x) by GMRES, where J_s v is the generated Jacobian-vector
product of the saddle map (never a matrix: the chain has L r^2 unknowns), to a relative accuracy that
tightens as the residual falls (an inexact Newton method with forcing term min(1/2, sqrt(res))), then
backtracks along dx until the point is feasible and the residual has fallen. The same stopping rule
as numerics.anderson: |s(x) - x| <= tol max(|x|, |s(x)|); or, where no step lowers the residual, that it is
round-off: within FLOOR of how far x's own rounding moves it (a steep map cannot be solved further in float64).
"""
from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import LinearOperator, gmres

from ..errors import ConvergenceError

#: GMRES iterations per Newton step at most (the Krylov space is rebuilt at every step)
KRYLOV = 40
#: halvings of the Newton step before giving up on it
BACKTRACK = 8
#: ... unless the residual is within this factor of its round-off floor (_roundoff): then x is the fixed point
#: as far as float64 can tell (a steep map, targets far above the prior's output scale, floors near 1e-13)
FLOOR = 10.0


def _newton_step(jvp, x, at, g, rtol):
    """dx with |(J - I) dx + g| <= rtol |g| (GMRES, at most KRYLOV products) and the products used."""
    counted = [0]

    def product(v):
        counted[0] += 1
        return jvp(x, v, at) - v

    op = LinearOperator((x.size, x.size), matvec=product, dtype=float)
    dx, _ = gmres(op, -g, rtol=rtol, atol=0.0, restart=KRYLOV, maxiter=1)
    return dx, counted[0]


def _roundoff(sweep, x, g, scale):
    """The residual's round-off floor: how far the relative residual moves when x moves by its own rounding (a
    relative 2^-52 in each entry, random signs, fixed seed); 0 where that point is infeasible."""
    u = np.random.default_rng(0).choice((-1.0, 1.0), x.size)
    xp = x * (1 + np.finfo(float).eps * u)
    out = sweep(xp)
    return 0.0 if out is None else float(np.linalg.norm(out[0] - xp - g)) / scale


def solve(sweep, jvp, x, chi, tol=1e-13, maxiter=50, what="adaptive: the deep chain", partial=False):
    """(x*, aux at x*, Newton steps, relative residual, evaluations). ``sweep(x)`` is (s(x), aux) or None
    outside the feasible set; ``jvp(x, v, at)`` is J_s(x) v with at = sweep(x). With ``partial``, a step
    that finds no feasible decrease, or the last of maxiter steps, returns the point reached instead of
    raising (its residual says so)."""
    out = sweep(x)
    evaluations = 1
    if out is None:
        raise ConvergenceError(f"{what}: infeasible start (a layer's adapted law is not valid)", {"chi": chi})
    res = np.inf
    for it in range(1, maxiter + 1):
        g = out[0] - x
        scale = max(np.linalg.norm(x), np.linalg.norm(out[0]), 1e-300)
        res = np.linalg.norm(g) / scale
        if res <= tol or x.size == 0:
            return x, out[1], it, res, evaluations
        dx, products = _newton_step(jvp, x, out, g, min(0.5, np.sqrt(res)))
        evaluations += products
        gnorm, t = np.linalg.norm(g), 1.0
        for _ in range(BACKTRACK):
            cand = x + t * dx
            trial = sweep(cand)
            evaluations += 1
            if trial is not None and np.linalg.norm(trial[0] - cand) < (1 - 1e-4 * t) * gnorm:
                break
            t *= 0.5
        else:
            if partial:
                return x, out[1], it, res, evaluations
            floor = _roundoff(sweep, x, g, scale)
            evaluations += 1
            if res <= FLOOR * floor:
                return x, out[1], it, res, evaluations
            raise ConvergenceError(f"{what}: the Newton step found no feasible decrease",
                                   {"chi": chi, "iterations": it, "residual": res})
        x, out = cand, trial
    if partial:
        return x, out[1], maxiter, res, evaluations
    raise ConvergenceError(f"{what} did not converge", {"chi": chi, "iterations": maxiter, "residual": res})
