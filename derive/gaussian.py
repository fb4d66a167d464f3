"""Gaussian moments and Hessian solves of the Wishart field's one loop (docs/theory.md §2c).

In the field basis the Hessian of the action is a Hadamard weight plus one low-rank term,

    H[X, X] = sum_ij lam_ij X_ij^2 + k v^T diag(mu) v,   v = X b,

over symmetric n x n matrices X with the flat measure on X_ii, X_ij (i < j). Everything the loop
needs follows from that form in index notation (derive.indices):

- without the low-rank term the coordinates are independent: Cov0(X_ij, X_kl) =
  Lh_ij (d_ik d_jl + d_il d_jk) with Lh = 1/(2 lam) (``hadamard_covariance``, checked against the
  inverse of an explicit 3 x 3 precision in tests/derive);
- the low-rank term is a rank-n update in the probe v = X b: by Woodbury,
  Cov = Cov0 - Cov0(X, v) R Cov0(v, X) with R = (M^-1 + Omega)^-1, M = k diag(mu),
  Omega = Cov0(v, v); R solves (I + M Omega) R = M, a system without 1/mu (mu can vanish);
- E[X W X]_il = sum_jk W_jk Cov(X_ij, X_kl), the Gaussian moment of the loop source (``moment``);
- H[Z] = R_rhs for symmetric Z: H[Z] = lam o Z + (k/2)(b w^T + w b^T) with w = diag(mu) Z b, so
  Z = (R_rhs - h (b w^T + w b^T)) o Li (h = k/2, Li = 1/lam), and w solves the n x n system that
  substituting this Z into w = diag(mu) Z b gives (``hessian_system``).
"""
from __future__ import annotations

from functools import lru_cache

import sympy as sp

from .indices import A, add, delta, dummy, mul, operator, scale, simplify

k, h = sp.symbols("k h", real=True)


def cov0(i, j, p, q):
    """Cov0(X_ij, X_pq) of the Hadamard part."""
    return mul(A("Lh", i, j), add(mul(delta(i, p), delta(j, q)), mul(delta(i, q), delta(j, p))))


def probe_cov(i, j, p):
    """Cov0(X_ij, v_p), v = X b."""
    m = dummy()
    return mul(A("b", m), cov0(i, j, p, m))


def probe_gram(p, q):
    """Omega_pq = Cov0(v_p, v_q)."""
    m, r = dummy(), dummy()
    return mul(A("b", m), A("b", r), cov0(p, m, q, r))


def cov(i, j, p, q):
    """Cov(X_ij, X_pq) with the low-rank term, R the Woodbury core."""
    a, c = dummy(), dummy()
    return add(cov0(i, j, p, q), scale(-1, mul(probe_cov(i, j, a), A("R", a, c), probe_cov(p, q, c))))


@lru_cache(maxsize=None)
def moment():
    """E[X W X]_il for X ~ N(0, H^-1)."""
    j, q = dummy(), dummy()
    return simplify(mul(A("W", j, q), cov("i", j, q, "l")), ("i", "l"))


@lru_cache(maxsize=None)
def woodbury_system():
    """(S, rhs) with S R = rhs: S = I + k diag(mu) Omega, rhs = k diag(mu)."""
    S = add(delta("p", "q"), scale(k, mul(A("mu", "p"), probe_gram("p", "q"))))
    rhs = scale(k, mul(A("mu", "p"), delta("p", "q")))
    return simplify(S, ("p", "q")), simplify(rhs, ("p", "q"))


def _z(i, j):
    """Z_ij = (Rhs_ij - h (b_i w_j + w_i b_j)) Li_ij."""
    return mul(add(A("Rhs", i, j), scale(-h, add(mul(A("b", i), A("w", j)), mul(A("w", i), A("b", j))))),
               A("Li", i, j))


@lru_cache(maxsize=None)
def hessian_system():
    """(S, rhs, Z) for H[Z] = Rhs: S w = rhs fixes w, then Z = (Rhs - h(b w^T + w b^T)) o Li."""
    j = dummy()
    wz = mul(A("mu", "i"), _z("i", j), A("b", j))  # w_i = mu_i sum_j Z_ij b_j
    linear = [t for t in wz if any(n == "w" for n, _ in t.factors)]
    rhs = [t for t in wz if t not in linear]
    S = add(delta("i", "q"), scale(-1, operator(linear, "w", "q")))
    return simplify(S, ("i", "q")), simplify(rhs, ("i",)), simplify(_z("i", "j"), ("i", "j"))


def hadamard_covariance():
    """Lh = 1/(2 lam): the covariance scale of an off-diagonal coordinate, whose quadratic
    coefficient in (1/2) H[X, X] is lam_ij (X_ij and X_ji both), i.e. variance 1/(2 lam_ij); the
    diagonal then has Cov0(X_ii, X_ii) = 2 Lh_ii = 1/lam_ii, its own coefficient lam_ii/2."""
    lam = sp.Symbol("lam", positive=True)
    return lam, 1 / (2 * lam)
