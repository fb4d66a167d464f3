"""The posterior of a finite two-layer network (docs/theory.md §1, §7): log density terms by scale class.

log p(W, a | D) = sum_mu ell(y_mu - f_mu) + sum_i prior_a(a_i) + sum_i prior_w(|w_i|^2) + const,
  f_mu = sum_i a_i phi(w_i . x_mu),
  ell(r) = -(chi / 2 kappa) r^2,  prior_a(a) = -(chi N / 2 g_v) a^2,  prior_w(ww) = -(D / 2 g_w) ww.

The per-term slopes the sampler's gradient needs (d ell/d f, d prior_a/d a, 2 d prior_w/d ww) are
SymPy derivatives of these expressions; the chain rule through f (df/da_i = phi(h_i),
df/dw_i = a_i phi'(h_i) x) is the structure of the emitted kernel, checked against SymPy's
gradient of an explicit small network in tests/derive/test_network.py.
"""
from __future__ import annotations

import sympy as sp

from . import activations

y_mu, f_mu = sp.symbols("y_mu f_mu", real=True)
a_i = sp.Symbol("a_i", real=True)
ww = sp.Symbol("ww", nonnegative=True)
N, D, chi, kappa, g_v, g_w = sp.symbols("N D chi kappa g_v g_w", positive=True)


def likelihood():
    """ell per data point as a function of the output f_mu (docs/theory.md §1)."""
    return -(chi / (2 * kappa)) * (y_mu - f_mu) ** 2


def prior_readout():
    """log N(a_i; 0, g_v / (chi N)) up to a constant."""
    return -(chi * N / (2 * g_v)) * a_i**2


def prior_hidden():
    """log N(w_i; 0, (g_w / D) I) up to a constant, as a function of ww = |w_i|^2."""
    return -(D / (2 * g_w)) * ww


def slopes():
    """d ell/d f, d prior_a/d a, and the gradient coefficient 2 d prior_w/d ww (grad = coef * w)."""
    return (sp.diff(likelihood(), f_mu), sp.diff(prior_readout(), a_i), 2 * sp.diff(prior_hidden(), ww))


def log_posterior_explicit(activation: str, W, a, X, y, params):
    """SymPy log posterior of an explicit small network (for checking the emitted gradient)."""
    phi = activations.phi(activation)
    Nn, Dn = len(a), len(W[0])
    total = 0
    for mu in range(len(y)):
        f = sum(a[i] * phi.subs(activations.h, sum(W[i][d] * X[mu][d] for d in range(Dn))) for i in range(Nn))
        total += likelihood().subs({y_mu: y[mu], f_mu: f})
    for i in range(Nn):
        total += prior_readout().subs(a_i, a[i]) + prior_hidden().subs(ww, sum(W[i][d] ** 2 for d in range(Dn)))
    return total.subs(params)


def prior_precisions():
    """(prec_w, prec_a): -d^2/dx^2 of the log prior of one hidden-weight coordinate and of one
    readout (D/g_w and chi N/g_v, docs/theory.md §1)."""
    w = sp.Symbol("w", real=True)
    return (sp.simplify(-sp.diff(prior_hidden().subs(ww, w**2), w, 2)),
            sp.simplify(-sp.diff(prior_readout(), a_i, 2)))


def prior_variances():
    """(var_w, var_a): the per-coordinate prior variances, the inverses of the precisions."""
    return tuple(sp.simplify(1 / p) for p in prior_precisions())


def tilt_limit():
    """D/(2 g_w): the coefficient of |w|^2 in -log prior. The adapted single-neuron law
    q(w) ∝ prior(w) exp(phi^T Ct phi) is normalisable along a ray w = t v only while the tilt
    phi(Xv)^T Ct phi(Xv) stays below it (docs/theory.md §6)."""
    return sp.simplify(-sp.diff(prior_hidden(), ww))


lam_ct, lam_xx = sp.symbols("lam_ct lam_xx", real=True)
ray_ratio = sp.Symbol("ratio", nonnegative=True)


def ray_tail_width():
    """The radial width of q along a ray of tilt/prior `ratio` < 1, in prior widths: for homogeneous phi
    log q(t v) = -(D/2g_w)(1 - ratio) t^2, so its curvature in t falls by 1 - ratio (docs/theory.md §6)."""
    t = sp.Symbol("t", positive=True)
    log_q = -tilt_limit() * (1 - ray_ratio) * t**2
    curvature = -sp.diff(log_q, t, 2)
    return sp.simplify(sp.sqrt(curvature.subs(ray_ratio, 0) / curvature))


ray_dim, ray_a = sp.symbols("d a", positive=True)


def ray_radius_law():
    """(shape, scale) of r^2 under q along the ray w = r u of a direction u, for homogeneous phi: in polar
    coordinates the density of r is r^(d-1) exp(-a r^2), a = log q(0) - log q(u) > 0; with s = r^2 (Jacobian
    1/(2 sqrt s)) it is a Gamma law, shape from the power of s and scale from its rate (docs/theory.md §6)."""
    r, s = sp.symbols("r s", positive=True)
    log_r = (ray_dim - 1) * sp.log(r) - ray_a * r**2
    log_s = sp.expand_log(log_r.subs(r, sp.sqrt(s)) + sp.log(sp.diff(sp.sqrt(s), s)), force=True)
    slope = sp.diff(log_s, s)
    rate = -sp.limit(slope, s, sp.oo)
    return sp.simplify(s * (slope + rate) + 1), sp.simplify(1 / rate)


def relu_margin():
    """Prior curvature D/g_w minus the largest tilt curvature of a relu neuron,
    2 lambda_max(Ct)_+ lambda_max(X^T X): positive is sufficient for normalisability (§6)."""
    return 2 * tilt_limit() - 2 * sp.Max(lam_ct, 0) * lam_xx
