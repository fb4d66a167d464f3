"""Kernel adaptation: the matrix-field action and its saddle (docs/theory.md §2b).

  Z = int dC dCt exp(-N tr(Ct C) + N W(Ct) + L(C)),
  L(C) = -(chi/2) y^T (g_v C + kappa)^-1 y - (1/2) logdet(g_v C + kappa)   [one-loop]
  L(C) = -(chi/2) y^T (g_v C + kappa)^-1 y                                  [tree: no A term]
  W(Ct) = -(1/2) logdet(I - 2 K Ct)                                         [linear phi]

``saddle(order)`` differentiates the action with derive.matcalc (SymPy matrix expressions) and
solves the two stationarity conditions for Ct and C. ``reduction(order)`` turns them into the
per-eigenvalue maps the structured solver of runtime.adaptive uses. For linear phi
C = (I - 2 K Ct)^-1 K, i.e. C^-1 = K^-1 - 2 Ct where C is invertible, and Ct is a function of C
(the A term) plus a rank-one term sigma/2 alpha alpha^T. In the eigenbasis of K (range of C):

  h(C) = K^-1 - sigma alpha alpha^T,   h(b) = 1/b + 2 ct_A(b),

with ct_A(b) the A term of Ct on an eigenvalue b of C. So C = h^-1(R) with
R = Lambda^-1 - sigma a a^T for a = U^T alpha: a matrix function of one diagonal-plus-rank-one
matrix, and A = f(C) with f(b) = 1/(g_v b + kappa). Everything below is derived from the action
by SymPy; the 1 x 1 substitutions evaluate the commuting parts on one eigenvalue.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from .matcalc import LogDet, gradient

P = sp.Symbol("P", integer=True, positive=True)
Q = sp.Symbol("Q", integer=True, positive=True)
C = sp.MatrixSymbol("C", P, P)
Ct = sp.MatrixSymbol("Ct", P, P)
K = sp.MatrixSymbol("K", P, P)
y = sp.MatrixSymbol("y", P, 1)
N, chi, kappa, g_v = sp.symbols("N chi kappa g_v", positive=True)
#: eigenvalue of C, eigenvalue of R = h(C), 1 x 1 stand-ins for K and y
b, rho = sp.symbols("b rho", positive=True)
k1, y1 = sp.symbols("k y1", positive=True)

ORDERS = (0, 1)


def _sym(expr):
    """Impose the symmetry of C, Ct, K (and of g_v C + kappa): X^T -> X."""
    return expr.xreplace({C.T: C, Ct.T: Ct, K.T: K})


def fit_operator():
    """g_v C + kappa I, whose inverse is docs/theory.md's A."""
    return g_v * C + kappa * sp.Identity(P)


def action(order: int):
    """-N tr(Ct C) + N W(Ct) + L(C) for linear phi; order 0 drops the output fluctuations."""
    if order not in ORDERS:
        raise ValueError(f"kernel-adaptation saddle orders are {ORDERS}")
    M = fit_operator()
    L = -(chi / 2) * sp.Trace(y.T * M.I * y)
    if order >= 1:
        L = L - LogDet(M) / 2
    W = -LogDet(sp.Identity(P) - 2 * K * Ct) / 2
    return -N * sp.Trace(Ct * C) + N * W + L


@dataclass(frozen=True)
class Saddle:
    """Stationarity of the action: Ct = ct(C) from dS/dC = 0 and C = c(Ct) from dS/dCt = 0."""

    Ct: sp.Expr
    C: sp.Expr


@lru_cache(maxsize=None)
def saddle(order: int) -> Saddle:
    """Saddle-point equations by SymPy differentiation (derive.matcalc.gradient)."""
    S = action(order)
    gC = _sym(gradient(S, C))  # = -N Ct + dL/dC
    gCt = _sym(gradient(S, Ct))  # = -N C + N dW/dCt
    ct_expr = sp.expand((gC + N * Ct) / N).doit()
    c_expr = sp.expand((gCt + N * C) / N).doit()
    assert not ct_expr.has(Ct) and not c_expr.has(C)
    return Saddle(Ct=ct_expr, C=c_expr)


def _on_eigenvalue(expr, c_val, k_val, y_val):
    """Evaluate a matrix expression at P = 1 (commuting case): C = c, K = k, y = y1."""
    e = expr.subs(P, 1)
    e = e.xreplace({C.subs(P, 1): sp.Matrix([[c_val]]), K.subs(P, 1): sp.Matrix([[k_val]]),
                    y.subs(P, 1): sp.Matrix([[y_val]]), sp.Identity(1): sp.Matrix([[1]])})
    e = sp.Matrix(e.doit()) if hasattr(e, "doit") else e
    return sp.simplify(e[0, 0] if getattr(e, "is_Matrix", False) else e)


@dataclass(frozen=True)
class Reduction:
    """Per-eigenvalue maps of the linear-phi saddle (see module docstring).

    sigma: coefficient of alpha alpha^T in -2 Ct (so R = Lambda^-1 - sigma a a^T);
    h: R-eigenvalue as a function of the C-eigenvalue b; f: A-eigenvalue 1/(g_v b + kappa);
    b_of_rho: the positive root of h(b) = rho (numerically stable form);
    f_of_rho, df_of_rho: f(b(rho)) and its rho-derivative f'(b)/h'(b).
    """

    sigma: sp.Expr
    h: sp.Expr
    f: sp.Expr
    b_of_rho: sp.Expr
    f_of_rho: sp.Expr
    df_of_rho: sp.Expr


def _positive_root(poly_expr, var):
    """The positive root of a*x^2 + p*x + q or p*x + q, without cancellation.

    The sign is normalised so that a > 0; a positive product of the roots' magnitudes then needs
    q < 0 (one positive, one negative root), which holds for the saddle maps here."""
    poly = sp.Poly(sp.expand(poly_expr), var)
    if poly.LC().is_negative:
        poly = -poly
    coeffs = poly.all_coeffs()
    if len(coeffs) == 2:
        p, q = coeffs
        return -q / p
    a, p, q = coeffs
    disc = sp.sqrt(p**2 - 4 * a * q)
    return sp.Piecewise((-2 * q / (p + disc), p >= 0), ((-p + disc) / (2 * a), True))


@lru_cache(maxsize=None)
def reduction(order: int) -> Reduction:
    sd = saddle(order)
    ct_full = _on_eigenvalue(sd.Ct, b, k1, y1)  # Ct on one eigenvalue, alpha = y1 / (g_v b + kappa)
    f = _on_eigenvalue(fit_operator().I, b, k1, y1)
    alpha2 = (y1 * f) ** 2
    ct_A = sp.simplify(ct_full.subs(y1, 0))
    half_sigma = sp.simplify((ct_full - ct_A) / alpha2)
    sigma = sp.simplify(2 * half_sigma)
    # C equation on one eigenvalue: b = c(ct); solve for 1/k to get h = 1/k + (rank-one part)
    ct = sp.Symbol("ct", real=True)
    kinv = sp.Symbol("kinv", positive=True)
    c_of_ct = _on_eigenvalue(sd.C.subs(Ct, sp.Identity(P) * ct), b, 1 / kinv, y1)
    sol = sp.solve(sp.Eq(b, c_of_ct), kinv)
    assert len(sol) == 1
    h = sp.simplify(sol[0].subs(ct, ct_A))
    num, den = sp.fraction(sp.together(h - rho))
    b_rho = _positive_root(num, b)
    f_rho = f.subs(b, b_rho)
    dfdb = sp.diff(f, b)
    dhdb = sp.diff(h, b)
    df_rho = (dfdb / dhdb).subs(b, b_rho)
    return Reduction(sigma=sigma, h=h, f=f, b_of_rho=b_rho, f_of_rho=f_rho, df_of_rho=df_rho)


# ----------------------------------------------------------------------------- predictions
# Predictions at the saddle (docs/theory.md §2b), as matrix expressions in the saddle quantities. They
# hold in any orthonormal basis restricted to a subspace that contains the range of C and C*
# (runtime passes the eigenbasis of K restricted to its range).
Cs = sp.MatrixSymbol("Cs", P, Q)  # C* = E_q[phi(X w) phi(X* w)^T]
css = sp.MatrixSymbol("css", Q, 1)  # adapted test diagonal c**
A = sp.MatrixSymbol("A", P, P)  # (g_v C + kappa)^-1
alpha = sp.MatrixSymbol("alpha", P, 1)  # A y


def predictions() -> dict:
    """train mean g_v C alpha (= y - kappa alpha), test mean g_v C*^T alpha,
    test variance (g_v/chi)[c** - g_v diag(C*^T A C*)]."""
    ones = sp.OneMatrix(P, 1)
    quad = sp.HadamardProduct(Cs, A * Cs).T * ones
    return {
        "train_mean": g_v * C * alpha,
        "test_mean": g_v * Cs.T * alpha,
        "test_var": (g_v / chi) * (css - g_v * quad),
    }


def conjugate_field(order: int):
    """Ct as a matrix expression in A and alpha (the fixed-point map's field step)."""
    sd = saddle(order)
    M = fit_operator()
    return sp.expand(sd.Ct.xreplace({M.I: A}).subs(A * y * y.T * A, alpha * alpha.T))


def precision_shift() -> sp.Expr:
    """The coefficient s in C^-1 = K^-1 + s Ct (linear phi; s = -2): C^-1 - K^-1 on one eigenvalue
    divided by ct, from the saddle's C(Ct). E = s Ct is the shift of the precision in
    derive.adaptation_basis."""
    ct = sp.Symbol("ct", real=True)
    c_of_ct = _on_eigenvalue(saddle(0).C.subs(Ct, sp.Identity(P) * ct), b, k1, y1)
    return sp.simplify((1 / c_of_ct - 1 / k1) / ct)
