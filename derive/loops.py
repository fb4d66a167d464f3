"""Loop-expansion engine for a one-dimensional field (docs/theory.md §3).

Input: an action split by scale class, S = (1/hbar) S0 + S1, expanded around the saddle s0 of S0
(so S0'(s0) = 0), and an observable O(s). Output: the coefficients c_l of
<O> = sum_l hbar^l c_l, each a polynomial in the Taylor coefficients of S0, S1 and O at s0.

Nothing here is a table of known formulas. The coefficients follow from three mechanical steps:

1. ``taylor``: rescale s = s0 + sqrt(hbar) x, so that
   S0/hbar = const + S0'' x^2/2 + sum_{n>=3} eps^(n-2) S0^(n) x^n/n!,
   S1 = const + sum_{n>=1} eps^n S1^(n) x^n/n!,   O = sum_n eps^n O^(n) x^n/n!,   eps = sqrt(hbar);
2. ``exponentiate``: the interaction exp(-V) as a power series in eps (exact recurrence for exp);
3. ``wick``: Gaussian moments <x^(2m)> = (2m-1)!! / S0''^m of the free part,
   then the ratio <O e^-V>_0 / <e^-V>_0 as a series in eps; odd powers vanish.

The "dressed" variant puts every term into the saddle (S1 = 0, S0 = full action): the same engine
with the S1 coefficients set to zero. Its first order reproduces docs/theory.md §3's check formula
<O> = O + O''/(2 S'') - O' S'''/(2 S''^2) (tests/derive/test_loops.py).

Polynomial arithmetic uses sympy.polys.rings (sparse polynomials over QQ), which keeps order 4 and
beyond within seconds; ``a`` stands for 1/S0''.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import factorial

import sympy as sp
from sympy.polys.domains import QQ
from sympy.polys.rings import ring


def _double_factorial_odd(m: int) -> int:
    """(2m - 1)!! with (-1)!! = 1."""
    out = 1
    for k in range(1, 2 * m, 2):
        out *= k
    return out


def wick(R, poly, xi: int, ai: int):
    """Gaussian expectation of a polynomial in x of variance a: x^(2m) -> (2m-1)!! a^m."""
    out = R(0)
    for monom, coeff in poly.terms():
        k = monom[xi]
        if k % 2:
            continue
        new = list(monom)
        new[xi] = 0
        new[ai] += k // 2
        out += R({tuple(new): coeff * _double_factorial_odd(k // 2)})
    return out


@dataclass(frozen=True)
class Expansion:
    """Loop coefficients of <O> for one order L and one variant.

    ``coefficients[l]`` is c_l as a SymPy expression in the symbols ``A[n]`` (S0^(n) at the saddle),
    ``B[n]`` (S1^(n)) and ``O[n]`` (O^(n)); c_l is linear in the O[n], so ``weights[l][n]`` holds
    the coefficient of O[n] in c_l (zero where absent).
    """

    order: int
    dressed: bool
    A: tuple
    B: tuple
    O: tuple
    coefficients: tuple
    weights: tuple


def derivative_symbols(order: int):
    """Symbols for the Taylor data an order-L expansion needs.

    S0 needs derivatives 2..2L+2, S1 and O need 0..2L (index 0 kept for uniform array layout).
    """
    A = tuple(sp.Symbol(f"A_{n}") for n in range(2 * order + 3))
    B = tuple(sp.Symbol(f"B_{n}") for n in range(2 * order + 1))
    O = tuple(sp.Symbol(f"O_{n}") for n in range(2 * order + 1))
    return A, B, O


@lru_cache(maxsize=None)
def expand(order: int, dressed: bool = False) -> Expansion:
    """Derive c_0..c_L of <O> (docs/theory.md §3) by Taylor expansion and Wick contraction."""
    if order < 0:
        raise ValueError("order must be >= 0")
    L = order
    A, B, O = derivative_symbols(L)
    pmax = 2 * L  # highest power of eps needed for c_L
    names = ["x", "a"] + [f"A_{n}" for n in range(3, 2 * L + 3)]
    names += [f"B_{n}" for n in range(1, 2 * L + 1)] + [f"O_{n}" for n in range(0, 2 * L + 1)]
    R, *gens = ring(",".join(names), QQ)
    g = dict(zip(names, gens))
    x, a = g["x"], g["a"]

    # 1. taylor: V = sum_p eps^p V_p(x), O = sum_p eps^p O_p(x)
    V = [R(0)] * (pmax + 1)
    for p in range(1, pmax + 1):
        term = g[f"A_{p + 2}"] * x ** (p + 2) * QQ(1, factorial(p + 2))
        if not dressed:
            term += g[f"B_{p}"] * x**p * QQ(1, factorial(p))
        V[p] = term
    Opoly = [g[f"O_{p}"] * x**p * QQ(1, factorial(p)) for p in range(pmax + 1)]

    # 2. exponentiate: E = exp(-V), E_0 = 1, E_p = -(1/p) sum_k k V_k E_{p-k}
    E = [R(1)] + [R(0)] * pmax
    for p in range(1, pmax + 1):
        acc = R(0)
        for k in range(1, p + 1):
            acc += k * V[k] * E[p - k]
        E[p] = -acc * QQ(1, p)

    # 3. wick: Gaussian expectation in x (variance a = 1/S0''), then the ratio series
    xi = names.index("x")
    ai = names.index("a")

    def gauss(poly):
        return wick(R, poly, xi, ai)

    Den = [gauss(E[p]) for p in range(pmax + 1)]
    Num = []
    for p in range(pmax + 1):
        acc = R(0)
        for q in range(p + 1):
            acc += Opoly[q] * E[p - q]
        Num.append(gauss(acc))
    Rat = []
    for p in range(pmax + 1):
        acc = Num[p]
        for k in range(1, p + 1):
            acc -= Den[k] * Rat[p - k]
        Rat.append(acc)

    subs = {sp.Symbol("a"): 1 / A[2]}
    coefficients = []
    weights = []
    for l in range(L + 1):
        expr = Rat[2 * l].as_expr()
        assert Rat[2 * l + 1].is_zero if 2 * l + 1 <= pmax else True
        expr = expr.subs(subs)
        coefficients.append(expr)
        poly = sp.Poly(expr, *O)
        w = []
        for n in range(2 * L + 1):
            mon = [0] * len(O)
            mon[n] = 1
            w.append(sp.together(poly.coeff_monomial(tuple(mon))))
        assert poly.as_expr().subs({o: 0 for o in O}) == 0  # linear in O
        weights.append(tuple(w))
    return Expansion(L, dressed, A, B, O, tuple(coefficients), tuple(weights))


def truncated(series, order: int):
    """Sum of the first order+1 coefficients of a list of series coefficients."""
    return sum(series[: order + 1])


def series_product(a, b, order: int):
    """Cauchy product of two coefficient lists, truncated at ``order`` (docs/theory.md §4 truncated moments)."""
    return [sum(a[i] * b[l - i] for i in range(l + 1)) for l in range(order + 1)]


# ----------------------------------------------------------------------------- many components
def _isserlis(indices, G):
    """E[x_i1 ... x_ik] for x ~ N(0, G): the sum over perfect pairings (Wick / Isserlis)."""
    if not indices:
        return sp.S.One
    if len(indices) % 2:
        return sp.S.Zero
    first, rest = indices[0], indices[1:]
    total = sp.S.Zero
    for k, partner in enumerate(rest):
        total += G[first, partner] * _isserlis(rest[:k] + rest[k + 1:], G)
    return total


def expand_components(n: int):
    """First-order loop coefficient of <O> for an n-component field, dressed (docs/theory.md §2c, §3).

    Same machinery as ``expand``: Taylor expansion around the saddle in eps = sqrt(hbar),
    exp(-V) to second order in eps, Gaussian moments of covariance G = H^-1 by Wick's theorem
    (Isserlis), and the ratio of numerator and denominator. Returns (c1, symbols) with c1 in the
    explicit components O_i, O_ij, S_ijk, S_ijkl, G_ij; tests compare it with the index formula
    (1/2) O_ij G_ij - (1/2) O_i G_ij S_jkl G_kl.
    """
    from itertools import product

    G = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"G_{min(i, j)}{max(i, j)}"))
    O1 = [sp.Symbol(f"O_{i}") for i in range(n)]
    O2 = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"O_{min(i, j)}{max(i, j)}"))

    def sym3(i, j, k):
        return sp.Symbol("S_" + "".join(map(str, sorted((i, j, k)))))

    def sym4(i, j, k, l):
        return sp.Symbol("S_" + "".join(map(str, sorted((i, j, k, l)))))

    eps = sp.Symbol("eps")
    x = [sp.Symbol(f"x_{i}") for i in range(n)]
    V = (eps * sum(sym3(i, j, k) * x[i] * x[j] * x[k] for i, j, k in product(range(n), repeat=3)) / 6
         + eps**2 * sum(sym4(i, j, k, l) * x[i] * x[j] * x[k] * x[l] for i, j, k, l in product(range(n), repeat=4)) / 24)
    O0 = sp.Symbol("O")
    O = (O0 + eps * sum(O1[i] * x[i] for i in range(n))
         + eps**2 * sum(O2[i, j] * x[i] * x[j] for i, j in product(range(n), repeat=2)) / 2)
    weight = sp.expand(1 - V + V**2 / 2)

    def gauss(expr):
        expr = sp.expand(expr)
        poly = sp.Poly(expr, *x)
        out = sp.S.Zero
        for monom, coeff in poly.terms():
            idx = [i for i, p in enumerate(monom) for _ in range(p)]
            out += coeff * _isserlis(idx, G)
        return out

    def order2(expr):
        return sp.expand(expr).coeff(eps, 2)

    num = gauss(order2(O * weight))
    den2 = gauss(order2(weight))
    c1 = sp.expand(num - O0 * den2)  # ratio to second order in eps, zeroth-order terms O and 1
    return c1, {"G": G, "O1": O1, "O2": O2, "S3": sym3, "S4": sym4}
