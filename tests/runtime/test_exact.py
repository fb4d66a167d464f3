"""Exact 1-D integral over s (docs/theory.md §2a) against independent references.

1. Monte Carlo: s from its Gamma prior, reweighted by the likelihood computed with dense linear
   algebra (numpy solve/slogdet on K, not the spectral kernels), at chi = 1.
2. mpmath.quad at 30 digits of the same integral written directly from docs/theory.md §2a, including a
   sharply peaked posterior (large N and chi = N).
3. The grid-halving estimate is at round-off and the result does not move when the grid is
   refined further.
"""
import math

import mpmath
import numpy as np
import pytest

from msat.runtime import spectral
from msat.runtime.methods import exact
from tests_support import dense_conditionals


@pytest.mark.slow
def test_exact_matches_importance_sampled_prior(small_problem):
    X, y, X_test, spec = small_problem
    N, chi, kappa, g_v = 30, 1.0, 0.5, 1.0
    ex = exact.moments(spec, N, chi, kappa, g_v)
    rng = np.random.default_rng(1)
    M = 40000
    s = rng.gamma(shape=N / 2, scale=2 / N, size=M)
    K = (X @ X.T) / X.shape[1]
    kstar = (X @ X_test.T) / X.shape[1]
    loglik, m, mstar, vstar = dense_conditionals(K, kstar, np.einsum("ij,ij->i", X_test, X_test) / X.shape[1], y, s, chi, kappa, g_v)
    w = np.exp(loglik - loglik.max())
    p = w / w.sum()
    ess = 1.0 / np.sum(p**2)
    assert ess > 0.5 * M  # chi = 1: the reweighting is mild
    for est_samples, value in ((m, ex["train_mean"]), (mstar, ex["test_mean"]), (s[:, None], [ex["s_mean"]])):
        mean = p @ est_samples
        se = np.sqrt(p @ (est_samples - mean) ** 2 / ess)
        z = (mean - np.asarray(value)) / se
        assert np.all(np.abs(z) < 5), z
    test_var_mc = p @ vstar + p @ (mstar - p @ mstar) ** 2
    assert np.allclose(test_var_mc, ex["test_var"], rtol=0.02)


def _mp_reference(spec, N, chi, kappa, g_v, s0, sigma):
    """<m*_0>, <s>, <s^2> by mpmath.quad from the formulas of docs/theory.md §2a (30 digits)."""
    mpmath.mp.dps = 30
    lam = [mpmath.mpf(float(v)) for v in spec.lam]
    yt2 = [mpmath.mpf(float(v)) ** 2 for v in spec.yt]
    ktyt = [mpmath.mpf(float(a)) * mpmath.mpf(float(b)) for a, b in zip(spec.Kt[0], spec.yt)]
    N, chi, kappa, g_v = (mpmath.mpf(v) for v in (N, chi, kappa, g_v))

    def S(s):
        d = [g_v * s * l + kappa for l in lam]
        return (N * (s - mpmath.log(s)) / 2 + chi / 2 * sum(a / b for a, b in zip(yt2, d))
                + sum(mpmath.log(b) for b in d) / 2 + mpmath.log(s))

    S0 = S(mpmath.mpf(s0))

    def weight(s):
        return mpmath.exp(-(S(s) - S0))

    def mstar(s):
        return sum(g_v * s * c / (g_v * s * l + kappa) for c, l in zip(ktyt, lam))

    pts = [max(mpmath.mpf(s0) * mpmath.exp(k * sigma), mpmath.mpf(0)) for k in (-60, -20, -8, -3, 0, 3, 8, 20, 60)]
    pts = [mpmath.mpf(0)] + pts + [mpmath.inf]
    Z = mpmath.quad(weight, pts)
    return (float(mpmath.quad(lambda s: weight(s) * mstar(s), pts) / Z),
            float(mpmath.quad(lambda s: weight(s) * s, pts) / Z))


@pytest.mark.parametrize("N,chi", [(1, 1.0), (20, 1.0), (200, 200.0), (1600, 1600.0), (10**6, 1e6)])
def test_exact_matches_mpmath_quadrature(small_problem, N, chi):
    X, y, X_test, spec = small_problem
    kappa, g_v = 0.5, 1.0
    ex = exact.moments(spec, N, chi, kappa, g_v)
    sigma = 1.0 / math.sqrt(N)
    ref_m, ref_s = _mp_reference(spec, N, chi, kappa, g_v, ex["saddle"], sigma)
    assert abs(ex["test_mean"][0] - ref_m) <= 1e-12 * abs(ref_m)
    assert abs(ex["s_mean"] - ref_s) <= 1e-12 * abs(ref_s)
    assert ex["quadrature_error"] < 1e-13


def test_exact_matches_scipy_quad(small_problem):
    from scipy.integrate import quad

    X, y, X_test, spec = small_problem
    N, chi, kappa, g_v = 60, 5.0, 0.3, 1.5
    ex = exact.moments(spec, N, chi, kappa, g_v)
    K = (X @ X.T) / X.shape[1]
    kss = np.einsum("ij,ij->i", X_test, X_test) / X.shape[1]
    kstar = (X @ X_test.T) / X.shape[1]

    def cond(s):
        loglik, m, mstar, vstar = dense_conditionals(K, kstar, kss, y, np.array([s]), chi, kappa, g_v)
        prior = (N / 2 - 1) * math.log(s) - N * s / 2
        return loglik[0] + prior, m[0], mstar[0], vstar[0]

    c0 = cond(ex["saddle"])[0]

    def integrand(s, f):
        lw, m, ms, vs = cond(s)
        return math.exp(lw - c0) * f(s, m, ms, vs)

    opts = dict(epsabs=0, epsrel=1e-13, limit=200, points=[ex["saddle"]])
    lo, hi = 1e-6, 20.0
    Z = quad(integrand, lo, hi, args=(lambda s, m, ms, vs: 1.0,), **opts)[0]
    m0 = quad(integrand, lo, hi, args=(lambda s, m, ms, vs: m[0],), **opts)[0] / Z
    ms1 = quad(integrand, lo, hi, args=(lambda s, m, ms, vs: ms[1],), **opts)[0] / Z
    v2 = quad(integrand, lo, hi, args=(lambda s, m, ms, vs: vs[2] + ms[2] ** 2,), **opts)[0] / Z
    assert abs(ex["train_mean"][0] - m0) < 1e-11
    assert abs(ex["test_mean"][1] - ms1) < 1e-11
    assert abs(ex["test_var"][2] + ex["test_mean"][2] ** 2 - v2) < 1e-11


def test_refining_the_grid_does_not_move_the_result(small_problem, monkeypatch):
    X, y, X_test, spec = small_problem
    a = exact.moments(spec, 400, 400.0, 0.5, 1.0)
    monkeypatch.setattr(exact, "STEP", exact.STEP / 2)
    b = exact.moments(spec, 400, 400.0, 0.5, 1.0)
    assert b["nodes"] > 1.8 * a["nodes"]
    assert np.max(np.abs(np.asarray(a["test_mean"]) - b["test_mean"])) < 1e-14
    assert np.max(np.abs(np.asarray(a["test_var"]) - b["test_var"])) < 1e-14


def test_singular_kernel_p_greater_than_d():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 5))  # rank 5 < P = 30
    y = np.sign(X[:, 0])
    spec = spectral.spectrum(X, y, X[:3], 1.0)
    assert np.sum(spec.lam > 1e-10) == 5
    ex = exact.moments(spec, 50, 50.0, 0.5, 1.0)
    assert np.all(np.isfinite(ex["train_mean"])) and ex["quadrature_error"] < 1e-12


def test_a_rank_deficient_kernel_at_small_kappa_has_exactly_null_modes():
    """P = 6 <= D = 8, X of rank 2, kappa = 1e-7 (a hundred times the documented bound). The P x P
    eigendecomposition put K's four null modes at ~1e-16 instead of 0, and each added
    chi g_v yt_k^2 lam_k / 2 kappa^2 to dS/ds: s_mean read 1.0155 against 1.00358, the test variances
    1.2% high (at kappa = 5e-9, s_mean 7e7). Such a K now takes its spectrum from the SVD of X. The
    reference: docs/theory.md §2a by mpmath on the spectrum X was built with (two modes, the rest 0)."""
    from types import SimpleNamespace

    from msat.runtime import predict

    rng = np.random.default_rng(0)
    P, D, N, chi, kappa = 6, 8, 20, 20.0, 1e-7
    Q = np.linalg.qr(rng.standard_normal((P, P)))[0]
    V = np.linalg.qr(rng.standard_normal((D, 2)))[0]
    sv = np.array([5.0, 2.3])
    X = Q[:, :2] @ np.diag(sv) @ V.T
    y, X_test = rng.standard_normal(P), rng.standard_normal((1, D))
    lam = np.append(sv ** 2 / D, np.zeros(P - 2))
    Kt = np.append(sv * (X_test @ V)[0] / D, np.zeros(P - 2))[None, :]
    ref = SimpleNamespace(lam=lam, yt=Q.T @ y, Kt=Kt)
    m_ref, s_ref = _mp_reference(ref, N, chi, kappa, 1.0, 1.0, math.sqrt(2 / N))
    r = predict(X, y, X_test, N=N, chi=chi, kappa=kappa, method="exact")
    assert r.s_mean == pytest.approx(s_ref, rel=1e-9), (r.s_mean, s_ref)
    assert r.test_mean[0] == pytest.approx(m_ref, abs=1e-8), (r.test_mean[0], m_ref)  # k* rounding / kappa

