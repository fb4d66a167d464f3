"""The linear kernel-adaptation saddle in the eigenbasis of K (docs/theory.md §2b): the forms the
structured Newton solver and its observables use, each derived from its dense definition.

With K = U diag(lam) U^T restricted to its range (r modes) and a = U^T alpha, derive.adaptive's
saddle reads C = h^-1(R), A = f(C) with the rank-one-updated field

    R(a) = diag(1/lam) - sigma a a^T,

and the fixed point a = f(R(a)) y_r. In the eigenbasis Q of R (hats), with the divided
differences Phi_ij of f over R's eigenvalues (Daleckii-Krein: D f(R)[E] = Q (Phi o Q^T E Q) Q^T),

  residual    F = a - f o y                                             (``residual``)
  Jacobian    d(f(R) y)_i = sum_j Phi_ij dR_ij y_j, dR = -sigma (da a^T + a da^T)   (``jacobian``)

Test quantities from the dense definitions C* = (I - 2 K Ct)^-1 k* and c** = x*^T S x*,
S = ((D/g_w) I - 2 X^T Ct X)^-1, in the same basis (B = U^T C U, E = -2 U^T Ct U, khat = U^T k*):

  C*_r = (I - B E) khat,   c** = k** + diag(khat^T (E B E - E) khat)        (``test_forms``)

and the hidden weights: with X = sqrt(D/g_w) U sqrt(Lam) V^T, S = (g_w/D) M^-1 on the range of
X^T with M = I + sqrt(Lam) E sqrt(Lam), and the learned direction X^T alpha is V (sqrt(lam) o a)
(``weight_forms``). tests/derive/test_adaptation_basis.py checks each structured form against its
dense definition with explicit symbolic 3 x 3 matrices.
"""
from __future__ import annotations

from functools import lru_cache

import sympy as sp

from . import adaptive
from .indices import A, add, delta, mul, operator, scale, simplify

sigma = sp.Symbol("sigma", real=True)


def field():
    """R_ij = d_ij / lam_i - sigma a_i a_j."""
    return add(mul(delta("i", "j"), A("inv_lam", "i")), scale(-sigma, mul(A("a", "i"), A("a", "j"))))


def residual():
    """F_i = a_i - f_i y_i in the eigenbasis of R (f the eigenvalues of A, y = Q^T y_r)."""
    return add(A("a", "i"), scale(-1, mul(A("f", "i"), A("y", "i"))))


@lru_cache(maxsize=None)
def jacobian():
    """J with d(f(R) y) = J da (hat coordinates): the derivative of the fixed-point map."""
    j = "j"
    dR = scale(-sigma, add(mul(A("da", "i"), A("a", j)), mul(A("a", "i"), A("da", j))))
    dfy = mul(A("Phi", "i", j), dR, A("y", j))
    return simplify(operator(dfy, "da", "q"), ("i", "q"))


@lru_cache(maxsize=None)
def newton_matrix():
    """I - J: the Newton system (I - J) step = -F of the residual F(a) = a - f(R(a)) y."""
    return simplify(add(delta("i", "q"), scale(-1, jacobian())), ("i", "q"))


def nngp_start():
    """a at C = K (the NNGP, docs/theory.md §5): alpha = (g_v K + kappa)^-1 y on one eigenvalue."""
    lam, yk = sp.symbols("lam y_r", real=True)
    return lam, yk, adaptive._on_eigenvalue(adaptive.fit_operator().I, lam, lam, yk) * yk


def test_forms():
    """(C*_r[i, t], c**[t]): the test cross-kernel and the adapted test diagonal in the eigenbasis."""
    Cs = add(A("khat", "i", "t"), scale(-1, mul(A("B", "i", "j"), A("E", "j", "k"), A("khat", "k", "t"))))
    css = add(A("kss", "t"),
              mul(A("khat", "k", "t"), A("E", "k", "l"), A("B", "l", "m"), A("E", "m", "p"), A("khat", "p", "t")),
              scale(-1, mul(A("khat", "k", "t"), A("E", "k", "l"), A("khat", "l", "t"))))
    return simplify(Cs, ("i", "t")), simplify(css, ("t",))


def weight_forms():
    """(M[i, j], v[i]): the hidden-weight precision M = I + sqrt(Lam) E sqrt(Lam) (S = (g_w/D) M^-1
    on the range of X^T) and the learned direction v = sqrt(lam) o a in the same basis."""
    M = add(delta("i", "j"), mul(A("sqrt_lam", "i"), A("E", "i", "j"), A("sqrt_lam", "j")))
    v = mul(A("sqrt_lam", "i"), A("a", "i"))
    return simplify(M, ("i", "j")), simplify(v, ("i",))
