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
from ..numerics import deep_modes, observe, product_prior
from ..numerics.saddle import ActionGradient, find_saddle
from ..results import Result
from ..spectral import Spectrum
from . import SpectralSolver

LOG_CUTOFF = 60.0  # log-integrand cut-off below the peak (e^-60 ~ 1e-26 relative)
NEGLIGIBLE = 40.0  # a mode this far down weighs under 1e-17: left out of a deep integral (54 nats failed a point)
STEP = 1.0 / 8.0  # grid step in units of the Laplace width
#: the deep integral's grid-halving estimate above which it fails (relative to the largest moment, at least 1):
#: measured 1e-14 to 1e-9 where the grid holds the integrand, 50-290 where FFT noise swamped its tails
DEEP_QUADRATURE_TOL = 1e-6


def _log_integrand(spec: Spectrum, t, s0, N, chi, kappa, g_v):
    """-(S(s0 e^t) - S(s0)) + t  (the +t is the Jacobian ds = s dt)."""
    t = np.ascontiguousarray(t, dtype=np.float64)
    out = np.empty_like(t)
    generated.exact().action_difference(t, float(s0), float(chi), float(N), float(kappa),
                                        float(g_v), spec.lam, spec.yt2, spec.mult, out)
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
    """Peak s0 of the integrand in t = ln s and its Laplace width sigma in t: from the dressed saddle (S'(s) = 0)
    when it exists, then Brent's maximisation of the log-integrand -(S - S(s0)) + t itself, so that the centre
    exists for every N > 0 (the dressed saddle need not: at N ~ 1 the measure can dominate the prior)."""
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
    if not (math.isfinite(fb) and fb < fa and fb < fc):  # flat or not finite: beyond float64 (chi ~ 1e300)
        raise ConvergenceError("exact: the integrand has no peak within float64 (flat or not finite around its "
                               "start): rescale the parameters", {"s0": s0})
    opt = minimize_scalar(f, bracket=(a, b, c), method="brent", tol=1e-12)
    if not opt.success:
        raise ConvergenceError("exact: locating the peak failed", {"s0": s0})
    s0 = s0 * math.exp(opt.x)
    return s0, _width(spec, s0, N, chi, kappa, g_v)


def _width(spec, s0, N, chi, kappa, g_v):
    """The Laplace width in t of the peak at s0: its curvature by central differences (only sets the grid)."""
    h = 1e-3 / math.sqrt(max(N, 1.0))
    g = lambda x: _log_integrand(spec, np.array([x]), s0, N, chi, kappa, g_v)[0]  # noqa: E731
    curv = -(g(h) - 2 * g(0.0) + g(-h)) / (h * h)
    if not (curv > 0 and math.isfinite(curv)):
        raise ConvergenceError("exact: integrand has no curvature at its peak", {"s0": s0})
    return 1.0 / math.sqrt(curv)


def _grid(spec, N, chi, kappa, g_v, s_init):
    """(s0, t_lo, t_hi, step): the heaviest peak (numerics.deep_modes at depth 1) and a grid in t = ln(s/s0) over
    every peak within e^-60 of it, at an eighth of the narrowest one's width. Two peaks (an outside audit: a large
    target along a weak direction of K, P ~ N) were missed or under-resolved by a grid around the one nearest
    s_init (errors of 2e-3 with a `quadrature_error` larger than the answer, or 9e-5 with one of 1e-18)."""
    s0, sigma = _centre(spec, N, chi, kappa, g_v, s_init)
    found = deep_modes.modes(spec, [N], chi, kappa, g_v, math.log(s0))
    peaks = [m for m in found if m.log_mass > found[0].log_mass - LOG_CUTOFF] if found else []
    if peaks and abs(peaks[0].tau - math.log(s0)) > 1e-6:  # the search from s_init stopped at a lighter peak
        s0 = math.exp(peaks[0].tau)
        sigma = _width(spec, s0, N, chi, kappa, g_v)
    t_lo, t_hi = _range(spec, s0, sigma, N, chi, kappa, g_v)
    step = STEP * sigma
    for m in peaks[1:]:
        sig_m = _width(spec, math.exp(m.tau), N, chi, kappa, g_v)
        lo, hi = (m.tau - math.log(s0) + e for e in _range(spec, math.exp(m.tau), sig_m, N, chi, kappa, g_v))
        t_lo, t_hi, step = min(t_lo, lo), max(t_hi, hi), min(step, STEP * sig_m)
    return s0, t_lo, t_hi, step


def moments(spec: Spectrum, N, chi, kappa, g_v, s_init: float = 1.0, weight_direction=None) -> dict:
    """Exact train/test means, test variance, E[s], Var[s] at one chi, with error estimate.

    ``weight_direction`` = (z, g_w, D) adds "weight_cov_direction": the exact
    u^T (1/N) E[W^T W] u - g_w/D for a unit weight-space direction u with z = direction_modes(spec,
    X, u, g_w) (docs/theory.md §2a, generated hidden_weight_direction)."""
    s0, t_lo, t_hi, h = _grid(spec, N, chi, kappa, g_v, s_init)
    i = np.arange(math.floor(t_lo / h), math.ceil(t_hi / h) + 1)
    i_even = (i % 2) == 0
    t = i * h
    lw = _log_integrand(spec, t, s0, N, chi, kappa, g_v)
    if not np.all(np.isfinite(lw)):
        raise ConvergenceError("exact: non-finite integrand", {"s0": s0})
    w = np.exp(lw - lw.max())
    s_nodes = s0 * np.exp(t)
    tab, integrate, shares = observe.integrator(spec, s_nodes, w, chi, kappa, g_v)

    extra = [] if weight_direction is None else [_direction_moment(spec, tab, s_nodes, chi, N, g_v, weight_direction)]

    masks = (np.ones_like(i_even), i_even)
    fine, coarse = (m + tuple(w[mask] @ e[mask] / w[mask].sum() for e in extra)
                    for m, mask in zip(integrate(masks), masks))
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
        "roundoff_share": max(shares),
        **({"weight_cov_direction": float(fine[5])} if extra else {}),
    }


def _direction_moment(spec, tab, s_nodes, chi, N, g_v, weight_direction):
    """u^T (1/N) E[W^T W | s] u - g_w/D at the nodes (generated hidden_weight_direction, docs/theory.md
    §2a); at depth s is the total rescaling, N the first layer's width, whose weights these are, and g_v
    carries the upper layers' g_w (see ``deep_moments``)."""
    z, g_w, D = weight_direction
    R = tab.resolvent[:, 0, :]
    Q1 = np.ascontiguousarray(R @ (z * z))
    Q2 = np.ascontiguousarray(R @ (z * spec.yt))
    om = np.empty_like(s_nodes)
    generated.exact().hidden_weight_direction(s_nodes, float(chi), float(N), float(g_v), float(g_w), float(D),
                                              Q1, Q2, om)
    return om


def deep_moments(spec: Spectrum, widths, chi, kappa, g_v, tau_init: float = 0.0, weight_direction=None,
                 g_ws=None) -> dict:
    """Exact moments of a deep linear network (docs/theory.md §2d): the integral over tau = ln u with
    the prior of the product u of the layers' Gamma variables (numerics.product_prior, tilted to the
    posterior) times exp(-F), F the likelihood part of S. The error estimate repeats the whole
    computation, convolution included, at twice the step. ``weight_direction`` as for ``moments`` (with
    the first layer's g_w) adds the first layer's "weight_cov_direction": given u the network is linear
    in the first layer's weights, a one-layer model whose readout prior carries the layers above, g_v
    times their g_w (``g_ws``, one per layer, required with ``weight_direction``)."""
    gen = generated.exact()
    if weight_direction is not None and (g_ws is None or len(g_ws) != len(widths)):
        raise ValueError("deep_moments: the first layer's weight moment needs g_ws, one per layer")
    upper = float(np.prod(g_ws[1:])) if weight_direction is not None else 1.0
    found = deep_modes.modes(spec, widths, chi, kappa, g_v, tau_init)
    if not found:
        raise ConvergenceError("exact: no mode of the deep integrand found", {"tau_init": tau_init})
    tau0 = found[0].tau  # the largest mass: a search from tau_init alone could stop at a far smaller one
    F_tau, F_tt = (float(v[0]) for v in deep_modes.slopes(spec, tau0, chi, kappa, g_v))
    theta = -F_tau
    ks = [k for _, k in product_prior.layer_widths(widths, theta)]
    sigma = 1.0 / math.sqrt(1.0 / sum(1.0 / k for k in ks) + max(F_tt, 0.0))
    h = STEP * min(sigma, min(1.0 / math.sqrt(k) for k in ks))

    def on_grid(step):
        i0, logp = product_prior.log_density(widths, theta, step)
        tau = (i0 + np.arange(logp.shape[0])) * step
        # the likelihood is formed in u / u0 = e^(tau - tau0), which leaves float64 beyond |tau - tau0| ~ 709
        # (a few hundred layers' grid spans thousands in tau); the prior's density there is far below its peak
        finite = np.isfinite(logp) & (np.abs(tau - tau0) < 700.0)
        tau, logp = tau[finite], logp[finite]
        if tau.size == 0:
            raise ConvergenceError("exact: the deep prior's density is not finite anywhere on its grid",
                                   {"depth": len(widths), "step": step})
        outside = [m for m in found[1:] if m.log_mass > found[0].log_mass - NEGLIGIBLE
                   and not tau[0] <= m.tau <= tau[-1]]
        if outside:  # a second mode of weight the grid cannot reach: no answer rather than half of one
            raise ConvergenceError(
                f"exact: the deep integrand has separate modes at u = {math.exp(tau0):.4g} and "
                f"u = {math.exp(outside[0].tau):.4g} (log masses {found[0].log_mass - outside[0].log_mass:.3g} "
                "apart) that one grid does not hold", {"depth": len(widths), "tau0": tau0})
        dF = np.empty_like(tau)
        gen.likelihood_difference(tau - tau0, math.exp(tau0), float(chi), float(kappa), float(g_v),
                                  spec.lam, spec.yt2, spec.mult, dF)
        # untilt and add the likelihood together: their first orders cancel at tau0 (theta = -F_tau)
        lw = logp - (theta * (tau - tau0) + dF)
        if np.isnan(lw).any() or np.isposinf(lw).any() or not np.isfinite(lw).any():  # -inf: no weight, dropped
            raise ConvergenceError("exact: the deep integrand is not finite on its grid",
                                   {"depth": len(widths), "step": step, "tau0": tau0})
        keep = lw > np.max(lw) - LOG_CUTOFF
        tau, lw = tau[keep], lw[keep]
        u, w = np.exp(tau), np.exp(lw - lw.max())
        tab, integrate, roundoff = observe.integrator(spec, u, w, chi, kappa, g_v)
        extra = () if weight_direction is None else (
            w @ _direction_moment(spec, tab, u, chi, widths[0], g_v * upper, weight_direction) / w.sum(),)
        return integrate([np.ones(tau.shape[0], dtype=bool)])[0] + extra, tau.shape[0], max(roundoff)

    fine, nodes, share = on_grid(h)
    coarse, _, share2 = on_grid(2 * h)
    err = max(float(np.max(np.abs(np.atleast_1d(a - b)), initial=0.0)) for a, b in zip(fine, coarse))
    scale = max(1.0, *(float(np.max(np.abs(np.atleast_1d(a)), initial=0.0)) for a in fine))
    if not err <= DEEP_QUADRATURE_TOL * scale:  # a grid that does not hold the integrand: no answer, not a wrong one
        raise ConvergenceError(f"exact: the deep integral is not resolved on its grid (halving the step moves "
                               f"the moments by {err:.3g})", {"depth": len(widths), "step": h, "tau0": tau0})
    return {"train_mean": fine[0], "test_mean": fine[1], "test_var": fine[2], "s_mean": float(fine[3]),
            "s_var": float(fine[4]), "quadrature_error": err, "nodes": int(nodes), "saddle": math.exp(tau0),
            "roundoff_share": max(share, share2),
            **({"weight_cov_direction": float(fine[5])} if weight_direction is not None else {})}


def direction_modes(spec: Spectrum, X, u, g_w: float):
    """(z, g_w, D) for ``moments(weight_direction=...)``: z = sqrt(g_w/D) U^T X u (generated)."""
    D = X.shape[1]
    z = np.asarray(generated.exact().direction_modes(spec.U, X, np.asarray(u, float), g_w, D))
    # the zero modes of K are orthogonal to every column of X: u has no component along them
    return np.append(z, np.zeros(spec.modes - len(z))), g_w, D


class _Solver(SpectralSolver):
    """The exact integral at each chi, its centre warm-started from the previous point's peak."""

    def solve(self, chi, warm):
        p = self.params
        if p.depth > 1:
            m = deep_moments(self.spec, p.widths, chi, p.kappa, p.g_v, 0.0 if warm is None else math.log(warm))
        else:
            m = moments(self.spec, p.N, chi, p.kappa, p.g_v, s_init=1.0 if warm is None else warm)
        return Point(chi, value=m)

    def warm(self, state):
        return state.value["saddle"]

    def results(self, states):
        out = []
        for st in states:
            out.append(Result.point(self.params, st.chi, st.value,
                                    {"quadrature_error": st.value["quadrature_error"], "saddle": st.value["saddle"]}))
            share = st.value["roundoff_share"]
            if share > observe.PROBED_WARN:  # its bound read 6 times the error at y x 1e13; the probes' warning
                out[-1].warnings.append(
                    f"the test variances carry round-off of up to {share:.2g} of them (float64's bound on their "
                    "cancelling terms): targets far above the prior's output scale make their terms cancel; "
                    + observe.RESCALE)
        return out


def solver(data, params, **_):
    """`--method exact` (docs/theory.md §2a, §2d): the exact posterior of a linear network, any depth."""
    return _Solver(data, params)
