"""Saddle points of the kernel-rescaling action (docs/theory.md §2a, §3, §5).

bare:    S0'(s) = 0, S0 = prior + fit (tree level and the hbar-counted loop series);
dressed: S'(s) = 0 with every term of S (the resummed variant; also the centre of the exact
         integral).
Derivatives come from the generated kernel msat.generated.rescaling_saddle.saddle_equation;
this module is a root finder: Newton in u = ln s (s > 0 by construction), safeguarded by a
sign-change bracket and bisection, warm-started along a chi ladder.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from msat import generated

from ..errors import ConvergenceError
from ..spectral import Spectrum


#: |ln s| bound of the bracket search (s^-3 in S'' underflows to 0 beyond ~230)
U_MAX = 200.0


@dataclass(frozen=True)
class Saddle:
    s: float
    curvature: float  # d^2 S/ds^2 of the action whose root this is
    iterations: int


class ActionGradient:
    """S'(s), S''(s) of the bare (S0) or dressed (S0 + S1) action at one (chi, params)."""

    def __init__(self, spec: Spectrum, N, chi, kappa, g_v, dressed: bool):
        self._k = generated.saddle().saddle_equation
        self.spec, self.N, self.kappa, self.g_v = spec, float(N), float(kappa), float(g_v)
        self.dressed = dressed
        self._s = np.empty(1)
        self._chi = np.array([float(chi)])
        self._d0 = np.empty((1, 2))
        self._d1 = np.empty((1, 2))

    def __call__(self, s: float):
        self._s[0] = s
        self._k(self._s, self._chi, self.N, self.kappa, self.g_v, self.spec.lam, self.spec.yt2, self.spec.mult,
                self._d0, self._d1)
        if self.dressed:
            return self._d0[0, 0] + self._d1[0, 0], self._d0[0, 1] + self._d1[0, 1]
        return self._d0[0, 0], self._d0[0, 1]


def find_saddle(grad: ActionGradient, s_init: float = 1.0, tol: float = 1e-15,
                maxiter: int = 200) -> Saddle:
    """Root of S'(s) = 0 (a minimum of S) by bracketed Newton in u = ln s.

    S' -> -inf as s -> 0 (prior -N/(2s)) and S' -> N/2 > 0 as s -> inf, so a sign change always
    exists; Newton steps leaving the bracket are replaced by bisection.
    """
    if not (s_init > 0 and math.isfinite(s_init)):
        s_init = 1.0
    u = math.log(s_init)
    f, _ = grad(s_init)
    if f == 0.0:
        _, h = grad(s_init)
        return Saddle(s_init, h, 0)
    # bracket: walk outward from the warm start until S' changes sign
    step = 0.05
    lo = hi = u
    flo = fhi = f
    for _ in range(200):
        if hi + step > U_MAX or lo - step < -U_MAX:
            raise ConvergenceError("saddle: S'(s) has no sign change for s in (e^-200, e^200)",
                                   {"s_init": s_init, "dressed": grad.dressed})
        if f < 0:
            lo, flo = hi, fhi
            hi = hi + step
            fhi, _ = grad(math.exp(hi))
            if fhi > 0:
                break
        else:
            hi, fhi = lo, flo
            lo = lo - step
            flo, _ = grad(math.exp(lo))
            if flo < 0:
                break
        step *= 2
    else:
        raise ConvergenceError("saddle: no sign change of S'(s) found", {"s_init": s_init})
    if not (flo < 0 < fhi):
        raise ConvergenceError("saddle: bracketing failed", {"lo": math.exp(lo), "hi": math.exp(hi)})
    u = min(max(u, lo), hi)
    if not lo < u < hi:
        u = 0.5 * (lo + hi)
    for it in range(1, maxiter + 1):
        s = math.exp(u)
        f, h = grad(s)
        if not (math.isfinite(f) and math.isfinite(h)):
            raise ConvergenceError("saddle: non-finite action derivative", {"s": s})
        if f == 0.0:
            return Saddle(s, h, it)
        if f < 0:
            lo = u
        else:
            hi = u
        fu, hu = s * f, s * f + s * s * h  # dS/du and its u-derivative
        u_new = u - fu / hu if hu > 0 else 0.5 * (lo + hi)
        if not (lo < u_new < hi):
            u_new = 0.5 * (lo + hi)
        if abs(u_new - u) <= tol * max(1.0, abs(u)) or hi - lo <= 4e-16 * max(1.0, abs(u)):
            s = math.exp(u_new)
            f, h = grad(s)
            if h <= 0:
                raise ConvergenceError(
                    "saddle: stationary point is not a minimum (S'' <= 0)", {"s": s, "S''": h}
                )
            return Saddle(s, h, it)
        u = u_new
    raise ConvergenceError(
        "saddle: Newton did not converge", {"iterations": maxiter, "s": math.exp(u), "S'": f}
    )
