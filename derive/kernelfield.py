"""The Wishart field's own action for linear networks and its derivatives (docs/theory.md §2c).

One action covers both exact representations of §2c. A symmetric n x n field F enters the
outputs through a P x n map Phi:

  S(F) = -c0 logdet F + tr(Q F) + (chi/2) y^T A^-1 y + (1/2) logdet A,   A = g_v Phi F Phi^T + kappa,
  beta(F) = g_v F Phi^T A^-1 y      (the posterior-mean readout given F; train mean = Phi beta).

  kernel field   F = C,   n = P, Phi = I, Q = (N/2) K^-1,        c0 = (N - P - 1)/2   (needs D >= P)
  weight field   F = S_w, n = D, Phi = X, Q = (N D/(2 g_w)) I,   c0 = (N - D - 1)/2   (any P, D)

(S_w = (1/N) sum_i w_i w_i^T is Wishart with scale (g_w/D) I and C = X S_w X^T; both priors come
from ``wishart``.) Test means: k*^T K^-1 <beta> (kernel) and X* <beta> (weights), both exact.

Directional derivatives dS[X], d2S[X, X], d3S[X, X, Y], dbeta[X], d2beta[X, X] are derived with
derive.matcalc (SymPy matrix expressions, LogDet with Jacobi's rule), not typed by hand.

A test output enters through its covector p (kernel field p = K^-1 k*, weight field p = x*): its mean
given F is p^T beta(F), and its variance given F is ``test_variance()``; the posterior variance is
E_F[v] + Var_F[p^T beta], whose one loop needs dv, d2v and the square of p^T dbeta (``variance_derivatives``).

derive.fieldbasis.structured() then rewrites every derivative in the basis T with T^T F^-1 T = I and
T^T Phi^T A^-1 Phi T = diag(mu) (F = T T^T; T comes from the SVD of Phi F^1/2): the chains
Phi^T A^-1 Phi, y^T A^-1 Phi, Phi^T A^-1 y become diag(mu), b^T, b (b = T^T Phi^T A^-1 y), and F,
F^-1 become the identity. What is left are products of diag(mu), b, b^T, Q_T = T^T Q T and the
directions, which is the O(n^3) structure of §2c: a Hadamard Hessian plus one low-rank term, and a
loop source that needs only the Gaussian moments E[X W X]. derive.kernels_field prints these
products as NumPy code (generated/kernel_field.py).
"""
from __future__ import annotations

from functools import lru_cache

import sympy as sp

from .matcalc import LogDet, directional

P, n = sp.symbols("P n", integer=True, positive=True)
F = sp.MatrixSymbol("F", n, n)
Phi = sp.MatrixSymbol("Phi", P, n)
Q = sp.MatrixSymbol("Q", n, n)
y = sp.MatrixSymbol("y", P, 1)
X = sp.MatrixSymbol("X", n, n)
Y = sp.MatrixSymbol("Y", n, n)
p = sp.MatrixSymbol("p", n, 1)
N, D, chi, kappa, g_v, g_w, c0 = sp.symbols("N D chi kappa g_v g_w c0", positive=True)
s2 = sp.Symbol("s2", nonnegative=True)


def wishart(N, dim, scale_inverse):
    """(c0, q) of a Wishart field (1/N) sum_i w_i w_i^T, w_i ~ N(0, Sigma), in the action
    -c0 logdet F + q tr(Sigma^-1 F): c0 = (N - dim - 1)/2, q = N/2 times ``scale_inverse``."""
    return (N - dim - 1) / 2, N / 2 * scale_inverse


def priors() -> dict:
    """{instance: (c0, q)} with Q = q K^-1 (kernel field) or Q = q I (weight field)."""
    return {"kernel": wishart(N, P, 1), "weights": wishart(N, D, D / g_w)}


def fit_operator():
    return g_v * Phi * F * Phi.T + kappa * sp.Identity(P)


def action():
    """S(F) (flat measure on F_ii, F_ij with i < j)."""
    A = fit_operator()
    return (-c0 * LogDet(F) + sp.Trace(Q * F) + chi / 2 * sp.Trace(y.T * A.I * y) + LogDet(A) / 2)


def readout():
    """beta(F) = g_v F Phi^T A^-1 y: the mean readout weights given F (train mean Phi beta)."""
    return g_v * F * Phi.T * fit_operator().I * y


def test_variance():
    """v(F): the variance of one test output given the field (docs/theory.md §2c). With c* = Phi F p and
    c** = p^T F p + s2 the outputs' variance given the features is (g_v/chi)(c** - g_v c*^T A^-1 c*). The
    weight field fixes c* and c** (s2 = 0). The kernel field fixes only C: given C, the test features are
    h* = p^T h + e with e ~ N(0, s2), s2 = k** - k*^T K^-1 k*, so c* = C p + (1/N) sum_i h_i e_i; averaging
    over e adds -(g_v/chi) g_v (s2/N) tr(A^-1 C) to the variance and the mean's spread
    g_v^2 (s2/N) y^T A^-1 C A^-1 y."""
    A = fit_operator()
    C = Phi * F * Phi.T
    tr = sp.Trace
    return (g_v / chi * (tr(p.T * F * p) + s2 - g_v * tr(p.T * F * Phi.T * A.I * Phi * F * p)
                         - g_v * s2 / N * tr(A.I * C))
            + g_v**2 * s2 / N * tr(y.T * A.I * C * A.I * y))


def _symmetric_transpose(expr):
    """expr^T for an expression in the symmetric matrices F and X."""
    return expr.T.doit().xreplace({F.T: F, X.T: X})


@lru_cache(maxsize=None)
def variance_derivatives() -> dict:
    """{name: expression}: dv[X], d2v[X, X] and spread = (p^T dbeta[X])^2, whose Gaussian mean over
    X ~ N(0, H^-1) is the test mean's variance over the field at one loop (docs/theory.md §2c)."""
    v = test_variance()
    dv = directional(v, F, X)
    slope = p.T * derivatives()["dbeta"]
    return {"v": v, "dv": dv, "d2v": directional(dv, F, X),
            "spread": sp.Trace(slope * _symmetric_transpose(slope))}


@lru_cache(maxsize=None)
def derivatives() -> dict:
    """{name: expression}: dS[X], d2S[X, X], d3S[X, X, Y], dbeta[X], d2beta[X, X]."""
    dS = directional(action(), F, X)
    d2S = directional(dS, F, X)
    d3S = directional(d2S, F, Y)
    dbeta = directional(readout(), F, X)
    d2beta = directional(dbeta, F, X)
    return {"dS": dS, "d2S": d2S, "d3S": d3S, "dbeta": dbeta, "d2beta": d2beta}


def scalar_action():
    """S in terms of logdet F, tr(Q F), y^T A^-1 y and logdet A (symbols ldF, trQF, yAy, ldA)."""
    A = fit_operator()
    ldF, trQF, yAy, ldA = sp.symbols("logdet_F tr_QF yAy logdet_A", real=True)
    return action().xreplace({LogDet(F): ldF, sp.Trace(Q * F): trQF,
                              sp.Trace(y.T * A.I * y): yAy, LogDet(A): ldA})


sig, yu = sp.symbols("sig yU", real=True)


def basis_forms() -> dict:
    """The basis quantities on one singular value sig of Phi F^1/2 (docs/theory.md §2c): with F = T T^T,
    Phi T = U diag(sig) and yU = U^T y, the chains Phi^T A^-1 Phi, Phi^T A^-1 y, y^T A^-1 y and
    logdet A are diagonal, so each is the 1 x 1 evaluation of its matrix expression at P = n = 1,
    F = 1, Phi = sig, y = yU; sig = 0 gives the null space of C (A = kappa there)."""
    one = {P: 1, n: 1}
    subs = {F.subs(one): sp.Matrix([[1]]), Phi.subs(one): sp.Matrix([[sig]]), y.subs(one): sp.Matrix([[yu]]),
            sp.Identity(1): sp.Matrix([[1]])}
    A = fit_operator().subs(one)

    def scalar(e):
        return sp.simplify(sp.Matrix(e.subs(one).xreplace(subs).doit())[0, 0])

    Ainv = A.I
    forms = {
        "d": scalar(A),
        "mu": scalar(Phi.T.subs(one) * Ainv * Phi.subs(one)),
        "b": scalar(Phi.T.subs(one) * Ainv * y.subs(one)),
        "yAy": scalar(y.T.subs(one) * Ainv * y.subs(one)),
    }
    forms["logdet_A"] = sp.log(forms["d"])
    forms["yAy_null"] = forms["yAy"].subs(sig, 0)
    forms["logdet_A_null"] = forms["logdet_A"].subs(sig, 0)
    return forms


def outputs() -> dict:
    """Train and test means from the readout beta (docs/theory.md §2c), both exact for linear networks:
    kernel field Phi = I, test mean k*^T K^-1 beta; weight field Phi = X, test mean X* beta."""
    Pt, Dd = sp.symbols("P_test D_in", integer=True, positive=True)
    beta = sp.MatrixSymbol("beta", P, 1)
    kinv_beta = sp.MatrixSymbol("Kinv_beta", P, 1)
    kstar = sp.MatrixSymbol("kstar", P, Pt)
    Xm = sp.MatrixSymbol("X", P, Dd)
    Xt = sp.MatrixSymbol("X_test", Pt, Dd)
    beta_w = sp.MatrixSymbol("beta", Dd, 1)
    return {"kernel": (beta, kstar.T * kinv_beta), "weights": (Xm * beta_w, Xt * beta_w)}


def test_feature_variance():
    """s2 = k** - k*^T K^-1 k* per test point (a column): the variance of a test feature given the training
    ones, which the kernel field does not fix (``test_variance``); K^-1 k* arrives as a solve."""
    Pt = sp.Symbol("P_test", integer=True, positive=True)
    kstar, kinv_kstar = sp.MatrixSymbol("kstar", P, Pt), sp.MatrixSymbol("Kinv_kstar", P, Pt)
    kss = sp.MatrixSymbol("kss", Pt, 1)
    return kss - sp.HadamardProduct(kstar, kinv_kstar).T * sp.OneMatrix(P, 1)
