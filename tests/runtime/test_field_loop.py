"""The kernel field's one loop for any activation (docs/theory.md §2e), dense path, fed with a linear
network's exact Gaussian cumulants: it equals the same truncation of the Wishart action (tree level
N I - L, the prefactor ((P+1)/2) logdet C as a first-order shift), derived independently here with
SymPy on explicit 2 x 2 kernels, to round-off; its test means equal the linear identity
k*^T K^-1 <train mean>; and against the exact posterior it converges like N^-2 where order 1
converges like N^-1."""
import numpy as np
import pytest
import scipy.optimize
import sympy as sp

from msat import generated
from msat.runtime import predict, spectral
from msat.runtime.numerics import field_loop
from msat.runtime.numerics.deep_chain import DeepChain


def _tilted(Kaug, Ct, P):
    """The tilted Gaussian law's covariance over training and test points (generated layer map)."""
    T = np.zeros_like(Kaug)
    T[:P, :P] = Ct
    Kq = generated.deep_linear_adaptation().layer_kernel(Kaug, T)
    return 0.5 * (Kq + Kq.T)


def _wishart_truncation(K, y, N, chi, kappa, g_v):
    """SymPy: the saddle c0 of S0 = (N/2)(tr K^-1 C - logdet C) - L(C) and the one loop of the train
    means with S1 = ((P+1)/2) logdet C as a first-order shift, on an explicit 2 x 2 field."""
    P = 2
    c = sp.symbols("c00 c01 c11")
    Cm = sp.Matrix([[c[0], c[1]], [c[1], c[2]]])
    Am = g_v * Cm + kappa * sp.eye(P)
    ym = sp.Matrix(y)
    L = -(chi / 2) * (ym.T * Am.inv() * ym)[0] - sp.log(Am.det()) / 2
    S0 = N * ((sp.Matrix(np.linalg.inv(K)) * Cm).trace() - sp.log(Cm.det())) / 2 - L
    S1 = sp.Rational(P + 1, 2) * sp.log(Cm.det())
    grad = sp.lambdify([c], [sp.diff(S0, ci) for ci in c])
    c0 = scipy.optimize.root(lambda v: grad(v), [K[0, 0], K[0, 1], K[1, 1]], tol=1e-14).x
    at = dict(zip(c, c0))
    num = lambda e: float(e.subs(at))  # noqa: E731
    G = np.linalg.inv(np.array([[num(sp.diff(S0, a, b)) for b in c] for a in c]))
    S3G = np.array([sum(num(sp.diff(S0, a, b, e)) * G[i, j] for i, b in enumerate(c) for j, e in enumerate(c))
                    for a in c])
    dS1 = np.array([num(sp.diff(S1, a)) for a in c])
    means = []
    for m in g_v * Cm * Am.inv() * ym:
        m1 = np.array([num(sp.diff(m, a)) for a in c])
        m2 = np.array([[num(sp.diff(m, a, b)) for b in c] for a in c])
        means.append(num(m) + 0.5 * np.sum(m2 * G) - 0.5 * (G @ m1) @ S3G - (G @ m1) @ dS1)
    return np.array([[c0[0], c0[1]], [c0[1], c0[2]]]), np.array(means)


@pytest.mark.parametrize("Q,chi,N", [(0, 5.0, 40.0), (1, 5.0, 40.0), (2, 30.0, 30.0)])
def test_generic_loop_with_gaussian_cumulants_is_the_wishart_truncation(Q, chi, N):
    rng = np.random.default_rng(Q)
    P, D = 2, 5  # D >= P + Q: the Gaussian law of the field's coordinates is not degenerate
    Xa = rng.standard_normal((P + Q, D))
    Kaug = Xa @ Xa.T / D
    y = rng.standard_normal(P)
    kappa, g_v = 0.3, 1.2
    C0, ref = _wishart_truncation(Kaug[:P, :P], y, N, chi, kappa, g_v)
    Ct = 0.5 * (np.linalg.inv(Kaug[:P, :P]) - np.linalg.inv(C0))  # C0^-1 = K^-1 - 2 Ct at the saddle
    Kq = _tilted(Kaug, Ct, P)
    coords = field_loop.Coordinates(P, Q)
    train, test, (corr, _, _) = field_loop.loop_means(Kq[:P, :P], Kq[:P, P:], y, kappa, g_v, chi, N,
                                                  field_loop.GaussianCumulants(Kq, coords), coords)
    assert np.abs(corr).max() > 1e-4  # the loop moves the means
    np.testing.assert_allclose(train, ref, rtol=0, atol=1e-12)
    identity = Kaug[P:, :P] @ np.linalg.solve(Kaug[:P, :P], ref)
    np.testing.assert_allclose(test, identity, rtol=0, atol=1e-12)


def _linear_case(D, N, chi):
    """(order-1 predictions, the generic loop's test means and corrections, the data, the exact result) of a
    linear network with the Gaussian cumulants of its tilted law at the order-1 saddle."""
    rng = np.random.default_rng(1)
    P, Q = 3, 2
    X, Xt = rng.standard_normal((P, D)), rng.standard_normal((Q, D))
    y = np.tanh(X[:, 0] + 0.5 * X[:, 1])
    kappa, g_v = 0.2, 1.0
    Xa = np.vstack([X, Xt])
    spec = spectral.spectrum(X, y, Xt, 1.0, "linear")
    chain = DeepChain(spec, [N], [1.0], kappa, g_v, 1)
    st = chain.solve(chi)
    U = spec.columns(chain.mask)
    Kq = _tilted(Xa @ Xa.T / D, U @ st.T[0] @ U.T, P)
    coords = field_loop.Coordinates(P, Q)
    _, test, corr = field_loop.loop_means(Kq[:P, :P], Kq[:P, P:], y, kappa, g_v, chi, N,
                                          field_loop.GaussianCumulants(Kq, coords), coords)
    exact = predict(X, y, Xt, N=N, chi=chi, kappa=kappa, method="exact")
    return chain.predictions(st), test, corr, (X, y, Xt, kappa, g_v), exact


@pytest.mark.parametrize("D", [8, 3])
@pytest.mark.parametrize("regime", ["chi=1", "chi=N"])
def test_generic_loop_test_variance_converges_to_exact_like_n_to_minus_two(regime, D):
    """The test variance's one loop for any activation (docs/theory.md §2e: <v_t> with c**_t a coordinate of the
    field, plus the test mean's variance over the field), fed with Gaussian cumulants: against the exact linear
    network its error falls like N^-2 at chi = 1 and chi = N, where order 1 misses an O(1) part (ratio 0.6-0.75
    here); with D = 3 < P + 2Q the field's Gaussian law is degenerate, as for the means."""
    Ns = [40, 80, 160, 320]
    err1, err2 = [], []
    for N in Ns:
        o1, _, corr, _, exact = _linear_case(D, N, 1.0 if regime == "chi=1" else float(N))
        v1 = np.asarray(o1["test_var"])
        err1.append(np.abs(v1 - exact.test_var).max())
        err2.append(np.abs(v1 + corr[2] - exact.test_var).max())
        if regime == "chi=N":
            assert np.max(np.abs(v1 / exact.test_var - 1)) > 0.2
            assert np.max(np.abs((v1 + corr[2]) / exact.test_var - 1)) < 0.01
    assert np.polyfit(np.log(Ns), np.log(err2), 1)[0] < -1.8
    assert -1.2 < np.polyfit(np.log(Ns), np.log(err1), 1)[0] < -0.8
    assert err2[-1] < err1[-1] / 50


def test_generic_and_wishart_test_variances_agree_to_their_own_accuracy():
    """Two derivations of order 2's test variance for a linear network, the generic field (C, Cs, c**) with
    Gaussian cumulants and the Wishart weight field of §2c: their gap falls like N^-2."""
    gaps = []
    for N in (80, 320):
        o1, _, corr, (X, y, Xt, kappa, g_v), _ = _linear_case(8, N, float(N))
        v1 = np.asarray(o1["test_var"])
        wishart = predict(X, y, Xt, N=N, chi=float(N), kappa=kappa, g_v=g_v, method="adaptive", order=2)
        gaps.append(np.abs(v1 + corr[2] - wishart.test_var).max())
    assert gaps[1] < gaps[0] / 10, gaps


@pytest.mark.parametrize("D", [8, 3])
@pytest.mark.parametrize("chi_of_N,slope", [(lambda N: 1.0, -1.6), (lambda N: float(N), -1.8)])
def test_generic_loop_converges_to_exact_like_n_to_minus_two(chi_of_N, slope, D):
    """Against the exact linear network, order 1's error falls like 1/N and the generic loop's like
    N^-2. With D = 3 < P + Q the Gaussian law of the field's coordinates is degenerate (W'' singular):
    the loop never inverts W'' and converges the same way."""
    Ns = [40, 80, 160, 320]
    err1, err2 = [], []
    for N in Ns:
        o1, test, _, _, exact = _linear_case(D, N, chi_of_N(N))
        err2.append(np.abs(test - exact.test_mean).max())
        err1.append(np.abs(o1["test_mean"] - exact.test_mean).max())
    s2 = np.polyfit(np.log(Ns), np.log(err2), 1)[0]
    s1 = np.polyfit(np.log(Ns), np.log(err1), 1)[0]
    assert s2 < slope and -1.2 < s1 < -0.8
    assert err2[-1] < err1[-1] / 20
