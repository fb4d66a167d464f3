"""generated/adaptive_linear.py (docs/theory.md §2b) against independent references: the
per-eigenvalue maps against their defining equation h(b) = rho, and every eigenbasis form of the
structured solver against its dense definition evaluated with NumPy on random problems (P > D
and P < D): the Newton matrix against finite differences of the residual map, C* and c** against
(I - 2 K Ct)^-1 k* and x*^T S x*, the hidden-weight precision against S = ((D/g_w) I - 2 X^T Ct X)^-1,
the precision shift against C^-1 - K^-1, the NNGP start against (g_v K + kappa)^-1 y."""
import numpy as np
import pytest
import sympy as sp

from msat import generated
from msat.derive import adaptive

gen = generated.linear_adaptation()


@pytest.mark.parametrize("order", [0, 1])
def test_emitted_spectrum_solves_h_of_b_equals_rho(order):
    red = adaptive.reduction(order)
    mod = generated.linear_adaptation()
    rho = np.geomspace(1e-4, 1e4, 41)
    b, f, df = (np.empty_like(rho) for _ in range(3))
    N, kappa, g_v = 11.0, 0.35, 1.7
    getattr(mod, f"adapted_spectrum_o{order}")(rho, N, kappa, g_v, b, f, df)
    h = sp.lambdify(adaptive.b, red.h.subs({adaptive.N: N, adaptive.kappa: kappa, adaptive.g_v: g_v}))
    np.testing.assert_allclose(h(b), rho, rtol=1e-12)
    np.testing.assert_allclose(f, 1 / (g_v * b + kappa), rtol=1e-14)
    # df/drho against central differences of the emitted f
    eps = 1e-6 * rho
    fp, fm = np.empty_like(rho), np.empty_like(rho)
    getattr(mod, f"adapted_spectrum_o{order}")(rho + eps, N, kappa, g_v, b.copy(), fp, df.copy())
    getattr(mod, f"adapted_spectrum_o{order}")(rho - eps, N, kappa, g_v, b.copy(), fm, df.copy())
    np.testing.assert_allclose(df, (fp - fm) / (2 * eps), rtol=1e-6)


def _problem(P, D, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((P, D))
    Xt = rng.standard_normal((3, D))
    g_w = 0.9
    K = g_w / D * X @ X.T
    lam, U = np.linalg.eigh(K)
    keep = lam > 1e-10 * lam.max()
    B = rng.standard_normal((P, P))
    Ct = 0.02 * (B + B.T)
    return X, Xt, g_w, K, lam[keep], U[:, keep], Ct


def _divided_differences(rho, f, df):
    dr = rho[:, None] - rho[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (f[:, None] - f[None, :]) / dr
    close = np.abs(dr) < 1e-12
    out[close] = 0.5 * (df[:, None] + df[None, :])[close]
    return out


@pytest.mark.parametrize("order", [0, 1])
def test_newton_matrix_is_the_derivative_of_the_residual(order):
    """(I - J) da = dF for the residual F(a) = a - f(R(a)) y_r, by central differences."""
    rng = np.random.default_rng(3)
    r, N, kappa, g_v, sigma = 5, 20.0, 0.4, 1.1, 0.3
    lam = rng.uniform(0.5, 2.0, r)
    y = rng.standard_normal(r)
    a = 0.2 * rng.standard_normal(r)
    spectrum = getattr(gen, f"adapted_spectrum_o{order}")

    def F(a):
        rho, Q = np.linalg.eigh(gen.saddle_field(1 / lam, a, sigma))
        b, f, df = (np.empty(r) for _ in range(3))
        spectrum(rho, N, kappa, g_v, b, f, df)
        return a - Q @ (f * (Q.T @ y)), (rho, Q, f, df)

    F0, (rho, Q, f, df) = F(a)
    NM = gen.newton_matrix(_divided_differences(rho, f, df), Q.T @ a, Q.T @ y, sigma)
    np.testing.assert_allclose(gen.saddle_residual(Q.T @ a, f, Q.T @ y), Q.T @ F0, atol=1e-14)
    for k in range(r):
        e = np.zeros(r)
        e[k] = 1e-6
        fd = (F(a + e)[0] - F(a - e)[0]) / 2e-6
        np.testing.assert_allclose(Q @ NM @ (Q.T @ e) / 1e-6, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("P,D", [(9, 4), (4, 9)])
def test_eigenbasis_forms_equal_their_dense_definitions(P, D):
    X, Xt, g_w, K, lam, U, Ct = _problem(P, D)
    kstar = g_w / D * X @ Xt.T
    kss = g_w / D * np.einsum("td,td->t", Xt, Xt)
    S = np.linalg.inv(D / g_w * np.eye(D) - 2 * X.T @ Ct @ X)
    E = gen.precision_shift(U.T @ Ct @ U)
    C = np.linalg.solve(np.eye(P) - 2 * K @ Ct, K)  # (I - 2 K Ct)^-1 K, docs/theory.md §2b
    B = U.T @ C @ U
    Cs, css = gen.test_forms(B, E, U.T @ kstar, kss)
    np.testing.assert_allclose(U @ Cs, np.linalg.solve(np.eye(P) - 2 * K @ Ct, kstar), atol=1e-12)
    np.testing.assert_allclose(U @ Cs, X @ S @ Xt.T, atol=1e-12)
    np.testing.assert_allclose(css, np.einsum("td,de,te->t", Xt, S, Xt), atol=1e-12)
    # hidden weights: S = (g_w/D) V M^-1 V^T on the range of X^T, learned direction X^T alpha = V v
    a = np.random.default_rng(1).standard_normal(len(lam))
    M, v = gen.weight_forms(lam, E, a)
    V = X.T @ U / np.sqrt(D / g_w * lam)  # right singular vectors of X
    np.testing.assert_allclose(V @ np.linalg.solve(M, V.T) * g_w / D, V @ V.T @ S @ V @ V.T, atol=1e-12)
    np.testing.assert_allclose(V @ v, np.sqrt(g_w / D) * X.T @ (U @ a), atol=1e-12)


def test_precision_shift_and_nngp_start():
    X, Xt, g_w, K, lam, U, Ct = _problem(5, 9)
    C = np.linalg.solve(np.eye(5) - 2 * K @ Ct, K)
    np.testing.assert_allclose(U @ gen.precision_shift(U.T @ Ct @ U) @ U.T, np.linalg.inv(C) - np.linalg.inv(K),
                               atol=1e-9)
    y = np.random.default_rng(2).standard_normal(5)
    a0 = gen.nngp_start(lam, U.T @ y, 0.3, 1.4)
    np.testing.assert_allclose(U @ a0, np.linalg.solve(1.4 * K + 0.3 * np.eye(5), y), rtol=1e-12)
