"""Kernel-adaptation derivation (derive.adaptive, derive.matcalc) against independent references:
finite differences of the action on random matrices, docs/theory.md §2b's saddle equations evaluated
numerically, and the emitted per-eigenvalue maps against their defining equation h(b) = rho."""
import numpy as np
import pytest
import sympy as sp

from msat.derive import adaptive, matcalc


def _spd(rng, P, scale=1.0):
    A = rng.standard_normal((P, P))
    return scale * (A @ A.T / P + 0.5 * np.eye(P))


def _numeric_action(order, C, Ct, K, y, N, chi, kappa, g_v):
    P = len(y)
    M = g_v * C + kappa * np.eye(P)
    L = -(chi / 2) * y @ np.linalg.solve(M, y)
    if order:
        L -= 0.5 * np.linalg.slogdet(M)[1]
    W = -0.5 * np.linalg.slogdet(np.eye(P) - 2 * K @ Ct)[1]
    return -N * np.trace(Ct @ C) + N * W + L


def _lambdify_matrix(expr, P, env):
    """Evaluate a matrix expression at P numerically by substituting explicit matrices."""
    e = expr.subs(adaptive.P, P)
    subs = {}
    for sym, val in env.items():
        subs[sym.subs(adaptive.P, P) if hasattr(sym, "shape") else sym] = sp.Matrix(val) if np.ndim(val) else val
    return np.array(sp.Matrix(e.xreplace(subs).doit()).evalf(), dtype=float)


@pytest.mark.parametrize("order", [0, 1])
def test_gradients_match_finite_differences(order):
    rng = np.random.default_rng(order)
    P, N, chi, kappa, g_v = 3, 7.0, 2.5, 0.4, 1.3
    K = _spd(rng, P)
    C = _spd(rng, P)
    Ct = 0.05 * _spd(rng, P)
    y = rng.standard_normal(P)
    S = adaptive.action(order)
    env = {adaptive.K: K, adaptive.C: C, adaptive.Ct: Ct, adaptive.y: y[:, None],
           adaptive.N: N, adaptive.chi: chi, adaptive.kappa: kappa, adaptive.g_v: g_v}
    for X, name in ((adaptive.C, "C"), (adaptive.Ct, "Ct")):
        G = _lambdify_matrix(matcalc.gradient(S, X), P, env)
        h = 1e-6
        fd = np.zeros((P, P))
        for i in range(P):
            for j in range(P):
                E = np.zeros((P, P))
                E[i, j] = h
                args = dict(C=C, Ct=Ct)
                plus = dict(args)
                minus = dict(args)
                plus[name] = args[name] + E
                minus[name] = args[name] - E
                fd[i, j] = (_numeric_action(order, plus["C"], plus["Ct"], K, y, N, chi, kappa, g_v)
                            - _numeric_action(order, minus["C"], minus["Ct"], K, y, N, chi, kappa, g_v)) / (2 * h)
        np.testing.assert_allclose(G, fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("order", [0, 1])
def test_saddle_equations_reduce_to_theory(order):
    rng = np.random.default_rng(10 + order)
    P, N, chi, kappa, g_v = 4, 9.0, 3.0, 0.3, 0.8
    K, C, Ct = _spd(rng, P), _spd(rng, P), 0.03 * _spd(rng, P)
    y = rng.standard_normal(P)
    sd = adaptive.saddle(order)
    env = {adaptive.K: K, adaptive.C: C, adaptive.Ct: Ct, adaptive.y: y[:, None],
           adaptive.N: N, adaptive.chi: chi, adaptive.kappa: kappa, adaptive.g_v: g_v}
    A = np.linalg.inv(g_v * C + kappa * np.eye(P))
    alpha = A @ y
    theory_Ct = (g_v / (2 * N)) * (chi * np.outer(alpha, alpha) - (A if order else 0))
    theory_C = np.linalg.solve(np.eye(P) - 2 * K @ Ct, K)  # (I - 2 K Ct)^-1 K
    np.testing.assert_allclose(_lambdify_matrix(sd.Ct, P, env), theory_Ct, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_lambdify_matrix(sd.C, P, env), theory_C, rtol=1e-10, atol=1e-12)


def test_tree_level_has_no_output_fluctuation_term():
    red0, red1 = adaptive.reduction(0), adaptive.reduction(1)
    assert sp.simplify(red0.h - 1 / adaptive.b) == 0
    assert sp.simplify(red1.h - (1 / adaptive.b - adaptive.g_v / adaptive.N / (adaptive.g_v * adaptive.b + adaptive.kappa))) == 0
    assert sp.simplify(red0.sigma - adaptive.chi * adaptive.g_v / adaptive.N) == 0
