"""The kernel field's own action for linear networks (THEORY §2c): groundwork for its one loop.

  S(C) = -((N - P - 1)/2) logdet C + (N/2) tr(K^-1 C) + (chi/2) y^T A^-1 y + (1/2) logdet A,
  A = g_v C + kappa,   m(C) = y - kappa A^-1 y   (train mean given C).

Directional derivatives dS[X], d2S[X, X], d3S[X, X, Y] and dm[X], d2m[X, X] are derived here with
derive.matcalc (SymPy matrix expressions, LogDet with Jacobi's rule), not typed by hand; the
first-order Laplace formula of THEORY §2c combines them. The structured O(P^3) evaluation and
its runtime are not built yet (issue 6).
"""
from __future__ import annotations

from functools import lru_cache

import sympy as sp

from .matcalc import LogDet, directional

P = sp.Symbol("P", integer=True, positive=True)
C = sp.MatrixSymbol("C", P, P)
Kinv = sp.MatrixSymbol("K^{-1}", P, P)  # K^-1 enters linearly; runtime supplies it (D >= P)
y = sp.MatrixSymbol("y", P, 1)
X = sp.MatrixSymbol("X", P, P)
Y = sp.MatrixSymbol("Y", P, P)
N, chi, kappa, g_v = sp.symbols("N chi kappa g_v", positive=True)


def fit_operator():
    return g_v * C + kappa * sp.Identity(P)


def action():
    """S(C) of THEORY §2c (flat measure on C_ii, C_ij with i < j)."""
    A = fit_operator()
    return (-(N - P - 1) / 2 * LogDet(C) + N / 2 * sp.Trace(Kinv * C)
            + chi / 2 * sp.Trace(y.T * A.I * y) + LogDet(A) / 2)


def train_mean():
    """m(C) = y - kappa A^-1 y."""
    return y - kappa * fit_operator().I * y


@lru_cache(maxsize=None)
def derivatives() -> dict:
    """{name: expression}: dS[X], d2S[X, X], d3S[X, X, Y], dm[X], d2m[X, X] (THEORY §2c)."""
    S = action()
    dS = directional(S, C, X)
    d2S = directional(dS, C, X)
    d3S = directional(d2S, C, Y)
    m = train_mean()
    dm = directional(m, C, X)
    d2m = directional(dm, C, X)
    return {"dS": dS, "d2S": d2S, "d3S": d3S, "dm": dm, "d2m": d2m}
