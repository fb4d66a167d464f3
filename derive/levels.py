"""Loop engine for an action with many hbar levels (docs/theory.md §2d, §3).

S = sum_m hbar^m S_m, m = -1..top, expanded around the saddle of S_-1 with the Taylor + Wick steps
of derive.loops.expand (which is the case top = 0), returning both <O> and ln Z order by order.
Nested integrals need it: a Laplace integral over one variable leaves, in the action of the next,
terms at every power of hbar (docs/theory.md §2d, the deep linear network).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import factorial

import sympy as sp
from sympy.polys.domains import QQ
from sympy.polys.rings import ring

from .loops import wick


def level_symbol(m: int, n: int) -> sp.Symbol:
    """The n-th derivative at the saddle of the action's level hbar^m: A_n (m = -1), B_n (m = 0),
    C{m}_n (m >= 1), the names ``expand`` uses for the first two levels."""
    if m == -1:
        return sp.Symbol(f"A_{n}")
    if m == 0:
        return sp.Symbol(f"B_{n}")
    return sp.Symbol(f"C{m}_{n}")


@dataclass(frozen=True)
class LevelExpansion:
    """Loop coefficients for an action with levels S = sum_{m=-1..top} hbar^m S_m (docs/theory.md §2d).

    ``weights[l][n]``: <O>_l = sum_n weights[l][n] O^(n); ``log_partition[l]``: the coefficient of
    hbar^l in ln of the normalised integral <e^(-V)>_0 (l = 1..order; index 0 holds 0). Both are
    expressions in ``level_symbol(m, n)`` (the level derivatives at the saddle of S_-1) and ``O``.
    """

    order: int
    top: int
    O: tuple
    weights: tuple
    log_partition: tuple

    def symbols(self, m: int):
        """The level-m derivative symbols these coefficients use, by derivative order."""
        used = set().union(*(sp.sympify(w).free_symbols for row in self.weights for w in row),
                           *(sp.sympify(z).free_symbols for z in self.log_partition))
        return {n: level_symbol(m, n) for n in range(2 * self.order + 3) if level_symbol(m, n) in used}


@lru_cache(maxsize=None)
def expand_levels(order: int, top: int | None = None) -> LevelExpansion:
    """<O> and ln Z to order ``order`` for S = sum_m hbar^m S_m, m = -1..top (default order - 1, the
    highest level that reaches hbar^order with a non-constant term), by the Taylor + Wick steps of
    ``expand``: level m contributes S_m^(n) x^n/n! at eps^(n + 2m) (eps = sqrt(hbar)); constants of
    the levels m >= 0 cancel in <O> and are left to the caller in ln Z.

    The two-level case (top = 0) is ``expand(order, dressed=False)``; tests check it symbolically.
    Nested integrals (docs/theory.md §2d: the density of a sum of layer variables, a
    saddle in the conjugate variable) produce the higher levels.
    """
    if order < 0:
        raise ValueError("order must be >= 0")
    top = order - 1 if top is None else top
    pmax = 2 * order
    levels = range(-1, top + 1)
    names = ["x", "a"]
    for m in levels:
        for n in range(3 if m == -1 else 1, pmax - 2 * m + 1):
            names.append(str(level_symbol(m, n)))
    names += [f"O_{n}" for n in range(pmax + 1)]
    R, *gens = ring(",".join(names), QQ)
    g = dict(zip(names, gens))
    x = g["x"]

    V = [R(0)] * (pmax + 1)
    for m in levels:
        for n in range(3 if m == -1 else 1, pmax - 2 * m + 1):
            V[n + 2 * m] += g[str(level_symbol(m, n))] * x**n * QQ(1, factorial(n))
    Opoly = [g[f"O_{p}"] * x**p * QQ(1, factorial(p)) for p in range(pmax + 1)]
    E = [R(1)] + [R(0)] * pmax
    for p in range(1, pmax + 1):
        E[p] = -sum((k * V[k] * E[p - k] for k in range(1, p + 1)), R(0)) * QQ(1, p)

    xi, ai = names.index("x"), names.index("a")

    def gauss(poly):
        return wick(R, poly, xi, ai)

    Den = [gauss(E[p]) for p in range(pmax + 1)]
    Num = [gauss(sum((Opoly[q] * E[p - q] for q in range(p + 1)), R(0))) for p in range(pmax + 1)]
    Rat = []
    for p in range(pmax + 1):
        Rat.append(Num[p] - sum((Den[k] * Rat[p - k] for k in range(1, p + 1)), R(0)))
    # ln Den as a series: Den = 1 + sum_p Den_p eps^p, (ln Den)' = Den'/Den
    Log = [R(0)] * (pmax + 1)
    for p in range(1, pmax + 1):
        Log[p] = Den[p] - sum((QQ(k, p) * Log[k] * Den[p - k] for k in range(1, p)), R(0))

    subs = {sp.Symbol("a"): 1 / sp.Symbol("A_2")}
    O = tuple(sp.Symbol(f"O_{n}") for n in range(pmax + 1))
    weights, logs = [], [sp.S.Zero]
    for l in range(order + 1):
        if 2 * l + 1 <= pmax:
            assert Rat[2 * l + 1].is_zero and Log[2 * l + 1].is_zero
        poly = sp.Poly(Rat[2 * l].as_expr().subs(subs), *O)
        weights.append(tuple(sp.together(poly.coeff_monomial(o)) for o in O))
        if l:
            logs.append(sp.together(Log[2 * l].as_expr().subs(subs)))
    return LevelExpansion(order, top, O, tuple(weights), tuple(logs))
