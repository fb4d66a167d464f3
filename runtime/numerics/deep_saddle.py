"""The saddle of a deep linear network's L-field scalar action (docs/theory.md §2d).

Every layer's stationarity fixes its field given the conjugate variable theta (the slope of the
likelihood in T = ln u), so the L-field saddle is one equation in theta:
r(theta) = F_-1'(T(theta)) - theta = 0, T(theta) = sum_l t_l*(theta). The functions r, dr/dtheta,
T(theta) and the domain edge theta < min_l theta_l come from the generated modules
msat.generated.deep_layers_d<L>_o<K> and deep_series_o<K>; this module is a root finder: Newton in
z = ln(theta_max - theta) (theta stays in its domain), safeguarded by a sign-change bracket and
bisection, warm-started along a chi ladder. r > 0 as theta -> -inf and r < 0 at the domain edge
(where the likelihood's slope vanishes), so a sign change exists whenever theta_max > 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from msat import generated

from ..errors import ConvergenceError
from ..spectral import Spectrum

#: |z| bound of the bracket search
Z_MAX = 200.0


@dataclass(frozen=True)
class DeepSaddle:
    theta: float
    T: float  # ln u at the saddle
    iterations: int


class DeepAction:
    """r(theta), dr/dtheta and T(theta) of a deep linear network at one chi (bare or dressed split)."""

    def __init__(self, spec: Spectrum, widths, chi, kappa, g_v, dressed: bool, order: int):
        self.layers, self.series = generated.deep(len(widths), order)
        if self.layers.CUMULANTS != self.series.CUMULANTS:
            raise RuntimeError("generated deep modules disagree on their cumulant columns; run `msat derive`")
        variant = "dressed" if dressed else "bare"
        self.variant, self.dressed = variant, dressed
        self._layers = getattr(self.layers, f"layers_{variant}")
        self._likelihood = getattr(self.series, f"likelihood_{variant}")
        limit = getattr(self.layers, f"theta_limit_{variant}")
        self.widths = np.ascontiguousarray(widths, dtype=np.float64)
        self.theta_max = min(float(limit(float(n))) for n in widths)
        self.spec, self.chi, self.kappa, self.g_v = spec, float(chi), float(kappa), float(g_v)
        self._th, self._T, self._dT = np.empty(1), np.empty(1), np.empty(1)
        self._kap = np.empty((1, len(self.series.CUMULANTS)))
        self._dF = np.empty((1, len(self.series.LIKELIHOOD)))
        self._chi = np.array([self.chi])
        cols = self.series.LIKELIHOOD
        self._f1, self._f2 = cols.index((-1, 1)), cols.index((-1, 2))

    def __call__(self, theta: float):
        """(r, dr/dtheta, T) at theta."""
        self._th[0] = theta
        self._layers(self._th, self.widths, self._T, self._dT, self._kap)
        self._likelihood(self._T, self._chi, self.kappa, self.g_v, self.spec.lam, self.spec.yt2, self.spec.mult, self._dF)
        r, dr = self.series.saddle_equation(theta, self._dT[0], self._dF[0, self._f1], self._dF[0, self._f2])
        return r, dr, self._T[0]


def find_saddle(action: DeepAction, theta_init: float | None = None, tol: float = 1e-15,
                maxiter: int = 200) -> DeepSaddle:
    """Root of r(theta) = 0 by bracketed Newton in z = ln(theta_max - theta)."""
    tmax = action.theta_max
    if not tmax > 0:
        raise ConvergenceError(f"deep saddle: the {action.variant} split has no saddle with a layer of width "
                               f"{min(action.widths):g} (theta domain is empty); --method exact holds it (the bare "
                               "series fails too at widths of 1 or 2)", {"theta_max": tmax, "variant": action.variant})
    if theta_init is None or not (math.isfinite(theta_init) and theta_init < tmax):
        theta_init = 0.0

    def at(z):
        th = tmax - math.exp(z)
        r, dr, T = action(th)
        return th, r, dr, T

    z = math.log(tmax - theta_init)
    _, f, _, _ = at(z)
    # r increases with z at both ends (theta -> tmax as z -> -inf): walk out to a sign change
    lo = hi = z
    flo = fhi = f
    step = 0.05
    for _ in range(200):
        if flo < 0 < fhi:
            break
        if f < 0:
            lo, flo = hi, fhi
            hi = hi + step
            _, fhi, _, _ = at(hi)
        else:
            hi, fhi = lo, flo
            lo = lo - step
            _, flo, _, _ = at(lo)
        if abs(hi) > Z_MAX or abs(lo) > Z_MAX:
            raise ConvergenceError("deep saddle: r(theta) has no sign change",
                                   {"theta_init": theta_init, "theta_max": tmax})
        step *= 2
    if not flo < 0 < fhi:
        raise ConvergenceError("deep saddle: bracketing failed", {"theta_init": theta_init})
    z = min(max(z, lo), hi)
    if not lo < z < hi:
        z = 0.5 * (lo + hi)
    for it in range(1, maxiter + 1):
        th, f, dr, T = at(z)
        if not (math.isfinite(f) and math.isfinite(dr)):
            raise ConvergenceError("deep saddle: non-finite action derivative", {"theta": th})
        if f == 0.0:
            return DeepSaddle(th, T, it)
        if f < 0:
            lo = z
        else:
            hi = z
        dz = -(tmax - th) * dr  # dr/dz
        z_new = z - f / dz if dz > 0 else 0.5 * (lo + hi)
        if not lo < z_new < hi:
            z_new = 0.5 * (lo + hi)
        if abs(z_new - z) <= tol * max(1.0, abs(z)) or hi - lo <= 4e-16 * max(1.0, abs(z)):
            th, f, dr, T = at(z_new)
            return DeepSaddle(th, T, it)
        z = z_new
    raise ConvergenceError("deep saddle: Newton did not converge",
                           {"iterations": maxiter, "theta": tmax - math.exp(z), "r": f})
