"""Exact posterior moments of a linear network: the 1-D integral over s (docs/theory.md §2a).

<O> = int ds O(s) e^{-S(s)} / int ds e^{-S(s)}, total variance = E_s[v*(s)] + Var_s[m*(s)].

Quadrature: s = s0 e^t around the peak s0 of the integrand in t, trapezoid rule in t on a grid of step
h = sigma/8 (sigma the Laplace width in t), over the range where the integrand exceeds e^-60 of
its peak. The integrand is analytic in a strip |Im t| < pi about the real axis and decays at least
like a Gaussian, so the trapezoid rule converges geometrically; the same sum on every second node
(step 2h) gives the error estimate ``quadrature_error`` (the grid-halving check). The exponent
S(s) - S(s0) comes from the generated cancellation-free kernel, so sharp peaks (large N, chi)
keep full accuracy.
"""
from __future__ import annotations

import math

import numpy as np

from msat import generated

from ..errors import ConvergenceError
from ..ladder import Point
from ..numerics import observe
from ..numerics.saddle import ActionGradient, find_saddle
from ..results import Result
from ..spectral import Spectrum
from . import SpectralSolver

#: log-integrand cut-off below the peak (e^-60 ~ 1e-26 relative)
LOG_CUTOFF = 60.0
#: grid step in units of the Laplace width
STEP = 1.0 / 8.0


def _log_integrand(spec: Spectrum, t, s0, N, chi, kappa, g_v):
    """-(S(s0 e^t) - S(s0)) + t  (the +t is the Jacobian ds = s dt)."""
    t = np.ascontiguousarray(t, dtype=np.float64)
    out = np.empty_like(t)
    generated.exact().action_difference(t, float(s0), float(chi), float(N), float(kappa),
                                        float(g_v), spec.lam, spec.yt2, out)
    return -out + t


def _range(spec, s0, sigma, N, chi, kappa, g_v):
    """Smallest symmetric-in-steps range [t_lo, t_hi] outside which the integrand is < e^-60."""
    ends = []
    for sign in (-1.0, 1.0):
        k = 4.0
        while True:
            lw = _log_integrand(spec, np.array([sign * k * sigma]), s0, N, chi, kappa, g_v)[0]
            if lw < -LOG_CUTOFF or not math.isfinite(lw):
                break
            k *= 1.25
            if k > 1e4:
                raise ConvergenceError("exact: integrand does not decay", {"s0": s0, "sigma": sigma})
        ends.append(sign * k * sigma)
    return ends


def _centre(spec, N, chi, kappa, g_v, s_init):
    """Peak s0 of the integrand in t = ln s and its Laplace width sigma in t.

    Starts from the dressed saddle (S'(s) = 0) when it exists, then maximises the log-integrand
    -(S - S(s0)) + t itself with Brent's method, so that the centre exists for every N > 0 (the
    dressed saddle need not: at N ~ 1 the measure can dominate the prior).
    """
    from scipy.optimize import minimize_scalar

    try:
        s0 = find_saddle(ActionGradient(spec, N, chi, kappa, g_v, dressed=True), s_init).s
    except ConvergenceError:
        s0 = s_init if s_init > 0 else 1.0
    f = lambda x: -_log_integrand(spec, np.array([x]), s0, N, chi, kappa, g_v)[0]  # noqa: E731
    # a bracket for the maximum: the integrand decays on both sides of its single peak
    a, b, c = -0.5, 0.0, 0.5
    fa, fb, fc = f(a), f(b), f(c)
    for _ in range(60):
        if fb <= fa and fb <= fc:
            break
        if fa < fb:
            a, b, c, fb, fc = 2 * a - b, a, b, fa, fb
            fa = f(a)
        else:
            a, b, c, fa, fb = b, c, 2 * c - b, fb, fc
            fc = f(c)
    else:
        raise ConvergenceError("exact: no peak of the integrand found", {"s0": s0})
    opt = minimize_scalar(f, bracket=(a, b, c), method="brent", tol=1e-12)
    if not opt.success:
        raise ConvergenceError("exact: locating the peak failed", {"s0": s0})
    s0 = s0 * math.exp(opt.x)
    # curvature of the log-integrand at the peak by central differences (only sets the grid)
    h = 1e-3 / math.sqrt(max(N, 1.0))
    g = lambda x: _log_integrand(spec, np.array([x]), s0, N, chi, kappa, g_v)[0]  # noqa: E731
    curv = -(g(h) - 2 * g(0.0) + g(-h)) / (h * h)
    if not (curv > 0 and math.isfinite(curv)):
        raise ConvergenceError("exact: integrand has no curvature at its peak", {"s0": s0})
    return s0, 1.0 / math.sqrt(curv)


def moments(spec: Spectrum, N, chi, kappa, g_v, s_init: float = 1.0, weight_direction=None) -> dict:
    """Exact train/test means, test variance, E[s], Var[s] at one chi, with error estimate.

    ``weight_direction`` = (z, g_w, D) adds "weight_cov_direction": the exact
    u^T (1/N) E[W^T W] u - g_w/D for a unit weight-space direction u with z = direction_modes(spec,
    X, u, g_w) (docs/theory.md §2a, generated hidden_weight_direction)."""
    s0, sigma = _centre(spec, N, chi, kappa, g_v, s_init)
    t_lo, t_hi = _range(spec, s0, sigma, N, chi, kappa, g_v)
    h = STEP * sigma
    i = np.arange(math.floor(t_lo / h), math.ceil(t_hi / h) + 1)
    i_even = (i % 2) == 0
    t = i * h
    lw = _log_integrand(spec, t, s0, N, chi, kappa, g_v)
    if not np.all(np.isfinite(lw)):
        raise ConvergenceError("exact: non-finite integrand", {"s0": s0})
    w = np.exp(lw - lw.max())
    s_nodes = s0 * np.exp(t)
    tab = observe.Tables(spec, s_nodes, np.full_like(t, chi), kappa, g_v, order=0)
    m_nodes = tab.test[:, 0, :]
    mstar = observe.test_mean(spec, m_nodes)  # (nodes, P*)
    vstar = observe.test_var(spec, tab.var[:, 0, :], tab.var_scalar[:, 0])

    def integrate(mask):
        p = w[mask] / w[mask].sum()
        train = observe.train_mean(spec, p @ tab.train[mask, 0, :])
        test = p @ mstar[mask]
        tvar = p @ vstar[mask] + p @ (mstar[mask] - test) ** 2
        sm = p @ s_nodes[mask]
        sv = p @ (s_nodes[mask] - sm) ** 2
        return train, test, tvar, sm, sv

    extra = []
    if weight_direction is not None:
        z, g_w, D = weight_direction
        R = tab.resolvent[:, 0, :]
        Q1 = np.ascontiguousarray(R @ (z * z))
        Q2 = np.ascontiguousarray(R @ (z * spec.yt))
        om = np.empty_like(t)
        generated.exact().hidden_weight_direction(s_nodes, float(chi), float(N), float(g_v),
                                                  float(g_w), float(D), Q1, Q2, om)
        extra.append(om)

    def integrate_all(mask):
        p = w[mask] / w[mask].sum()
        return integrate(mask) + tuple(p @ e[mask] for e in extra)

    fine = integrate_all(np.ones_like(i_even))
    coarse = integrate_all(i_even)
    err = max(float(np.max(np.abs(np.atleast_1d(a - b)), initial=0.0)) for a, b in zip(fine, coarse))
    return {
        "train_mean": fine[0],
        "test_mean": fine[1],
        "test_var": fine[2],
        "s_mean": float(fine[3]),
        "s_var": float(fine[4]),
        "quadrature_error": err,
        "nodes": int(len(t)),
        "saddle": s0,
        **({"weight_cov_direction": float(fine[5])} if extra else {}),
    }


def direction_modes(spec: Spectrum, X, u, g_w: float):
    """(z, g_w, D) for ``moments(weight_direction=...)``: z = sqrt(g_w/D) U^T X u (generated)."""
    D = X.shape[1]
    return np.asarray(generated.exact().direction_modes(spec.U, X, np.asarray(u, float), g_w, D)), g_w, D


class _Solver(SpectralSolver):
    """The exact integral at each chi, its centre warm-started from the previous point's peak."""


    def solve(self, chi, warm):
        p = self.params
        m = moments(self.spec, p.N, chi, p.kappa, p.g_v, s_init=1.0 if warm is None else warm)
        return Point(chi, value=m)

    def warm(self, state):
        return state.value["saddle"]

    def results(self, states):
        return [Result.point(self.params, st.chi, st.value,
                             {"quadrature_error": st.value["quadrature_error"], "saddle": st.value["saddle"]})
                for st in states]


def solver(data, params, **_):
    """`--method exact` (docs/theory.md §2a): the exact posterior of a linear network."""
    return _Solver(data, params)
