"""The loop series of a deep linear network's L-field scalar action (docs/theory.md §2d).

The action of §2d, S = sum_l [(N_l/2)(s_l - ln s_l) + ln s_l] + F(u), u = s_1 ... s_L, couples the
layers only through T = ln u = sum_l t_l (t_l = ln s_l). The series is derived by three exact
rewritings of the L-field integral, each followed by the one-dimensional engine of
``levels.expand_levels``; the asymptotic series of a function of hbar is unique, so every exact
rewriting gives the same coefficients as expanding the L fields directly (tests check depth 1
against ``loops.expand`` and depth 2 against the many-component engine):

1. ``layer``: t_l = ln s_l. The measure ds_l = s_l dt_l adds -t_l at hbar^0 (the bare split's
   measure term ln s_l cancels it; the dressed split keeps it, which is what keeps the dressed
   saddle of §2a). Each layer's integral W_l(theta) = ln int dt e^(-A_l(t) - theta t / hbar) is a
   one-dimensional Laplace integral: its levels W_{l,m}(theta) follow from the layer saddle (closed
   form) and the engine's ln Z coefficients.
2. ``density``: the prior density of T is rho(T) = int dtheta e^(theta T / hbar + K(theta)) (a
   Laplace inversion), K = sum_l W_l the cumulant function of T; its saddle T = -K_-1'(theta)
   gives ln rho(T) level by level.
3. ``outer``: <O> = int dT O(T) e^(-F(T) + ln rho(T)) / (same without O), again one-dimensional,
   with levels from the fit (1/hbar), the output fluctuations (hbar^0) and ln rho (every level).

Step 3 needs T-derivatives of functions of the inner saddle theta*(T): the derivation ``D`` acts
on the symbols k(m, j) = K_m^(j)(theta*) with d theta*/dT = -1 / K_-1''(theta*). The result is
a set of formulas that do not depend on the depth; the depth enters through the sums
k(m, j) = sum_l W_{l,m}^(j)(theta), emitted per depth with the layers written out.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp
from sympy.codegen.cfunctions import log1p
from sympy.polys.domains import QQ
from sympy.polys.rings import ring

from . import levels, model

t = sp.Symbol("t", real=True)
theta = sp.Symbol("theta", real=True)
T = sp.Symbol("T", real=True)
VARIANTS = ("bare", "dressed")


def k(m: int, j: int) -> sp.Symbol:
    """K_m^(j)(theta*): the j-th theta-derivative of level hbar^m of the cumulant function of T."""
    return sp.Symbol(f"k{'n' if m < 0 else ''}{abs(m)}_{j}")


def f(m: int, n: int) -> sp.Symbol:
    """F_m^(n)(T*): the n-th T-derivative of the likelihood's level hbar^m (fit -1, fluctuations 0)."""
    return sp.Symbol(f"f{'n' if m < 0 else ''}{abs(m)}_{n}")


# ----------------------------------------------------------------------------- 1. one layer
def layer_levels(variant: str):
    """(level -1, level 0) of one layer's action in t = ln s, without the theta t source.

    From the prior and measure terms of derive.model.action with s = e^t; the Jacobian -t sits at
    hbar^0. bare: prior at 1/hbar, measure + Jacobian (= 0) at hbar^0; dressed: prior + measure at
    1/hbar, Jacobian at hbar^0 (docs/theory.md §3: dressed puts every term of S into the saddle).
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}")
    terms = {tm.klass: tm.expr.subs(model.s, sp.exp(t)) for tm in model.action() if tm.klass in ("prior", "measure")}
    terms = {key: sp.expand(sp.expand_log(v, force=True)) for key, v in terms.items()}
    if variant == "bare":
        return terms["prior"], sp.expand(terms["measure"] - t)
    return terms["prior"] + terms["measure"], -t


def layer_saddle(variant: str):
    """(t*(theta), e^t*(theta)): the stationary point of level -1 + theta t, in closed form, with
    t* written as log1p so that it keeps full accuracy when theta << N (the usual case)."""
    top, _ = layer_levels(variant)
    (sol,) = sp.solve(sp.Eq(sp.diff(top + theta * t, t), 0), t)
    ratio = sp.cancel(sp.exp(sol))
    return log1p(sp.cancel(ratio - 1)), ratio


def _at_saddle(expr, variant):
    ts, ratio = layer_saddle(variant)
    return expr.subs(sp.exp(t), ratio).subs(t, ts)


@lru_cache(maxsize=None)
def layer_cumulants(variant: str, order: int) -> dict:
    """{m: W_m(theta)} for m = -1..order-1: the levels of one layer's ln int dt e^(-A(t) - theta t/hbar)
    up to constants (docs/theory.md §2d), from the layer saddle and levels.expand_levels."""
    top, zero = layer_levels(variant)
    top = top + theta * t
    out = {-1: -_at_saddle(top, variant),
           0: -_at_saddle(zero, variant) - sp.log(_at_saddle(sp.diff(top, t, 2), variant)) / 2}
    if order >= 2:
        e = levels.expand_levels(order - 1, top=0)
        vals = {levels.level_symbol(-1, n): _at_saddle(sp.diff(top, t, n), variant) for n in range(2, 2 * order + 1)}
        vals.update({levels.level_symbol(0, n): _at_saddle(sp.diff(zero, t, n), variant)
                     for n in range(1, 2 * order - 1)})
        for m in range(1, order):
            out[m] = sp.factor(e.log_partition[m].xreplace(vals))
    return out


def theta_limit(variant: str) -> sp.Expr:
    """The theta at which a layer's saddle runs off to s = 0 (e^t* = 0): the edge of the domain."""
    _, ratio = layer_saddle(variant)
    (lim,) = sp.solve(sp.Eq(ratio, 0), theta)
    return lim


def layer_cumulant_derivative(variant: str, order: int, m: int, j: int) -> sp.Expr:
    """W_m^(j)(theta) of one layer (width N = derive.model.N)."""
    return sp.factor(sp.diff(layer_cumulants(variant, order)[m], theta, j))


# ----------------------------------------------------------------------------- 2./3. density and outer
def _D(expr):
    """d/dT of a SymPy expression in theta* and the k(m, j) along the inner saddle T = -K_-1'(theta*)
    (any expression, logarithms included)."""
    dtheta = -1 / k(-1, 2)
    out = sp.S.Zero
    for sym in expr.free_symbols:
        if sym == theta:
            out += sp.diff(expr, sym) * dtheta
            continue
        name = sym.name
        if name.startswith("k"):
            head, j = name.split("_")
            out += sp.diff(expr, sym) * sp.Symbol(f"{head}_{int(j) + 1}") * dtheta
    return out


class _Derivation:
    """d/dT as a derivation of the polynomial ring in theta, q = 1/K_-1'' and the k(m, j) (exact
    rational arithmetic, fast at high order): D theta = -q, D k(m, j) = -q k(m, j+1),
    D q = q^3 k(-1, 3)."""

    def __init__(self, order: int):
        top = 2 * order + 4
        self.ks = [k(m, j) for m in range(-1, order) for j in range(top + 1)]
        self.q = sp.Symbol("q")
        syms = [theta, self.q] + self.ks
        names = [x.name for x in syms]
        self.R, *gens = ring(syms, QQ)
        g = dict(zip(names, gens))
        th, q = g["theta"], g["q"]
        self.images = [(th, -q), (q, q**3 * g[k(-1, 3).name])]
        for m in range(-1, order):
            for j in range(top):
                self.images.append((g[k(m, j).name], -q * g[k(m, j + 1).name]))

    def to_ring(self, expr):
        return self.R(sp.expand(sp.sympify(expr).xreplace({k(-1, 2): 1 / self.q})))

    def __call__(self, p):
        return sum((p.diff(x) * img for x, img in self.images), self.R(0))

    def to_expr(self, p):
        return p.as_expr().xreplace({self.q: 1 / k(-1, 2)})


@dataclass(frozen=True)
class Series:
    """The outer one-dimensional problem of a deep linear network at loop order ``order``.

    ``levels[m][n]``: the n-th T-derivative of level hbar^m of the outer action
    S(T) = F(T) - ln rho(T), in the symbols f(m, n), k(m, j) and theta (the inner saddle);
    ``expansion``: levels.expand_levels(order), whose A_n, B_n, C{m}_n are these levels.
    """

    order: int
    levels: dict
    expansion: levels.LevelExpansion

    def cumulants(self):
        """The k(m, j) symbols the formulas use, sorted by (m, j)."""
        used = set()
        for row in self.levels.values():
            for e in row.values():
                used |= {s for s in sp.sympify(e).free_symbols if s.name.startswith("k")}
        return sorted(used, key=_mj)

    def likelihood(self):
        """The f(m, n) symbols the formulas use."""
        used = set()
        for row in self.levels.values():
            for e in row.values():
                used |= {s for s in sp.sympify(e).free_symbols if s.name.startswith("f")}
        return sorted(used, key=_mj)


def _mj(sym):
    head, j = sym.name.split("_")
    m = -int(head[2:]) if head[1] == "n" else int(head[1:])
    return (m, int(j))


@lru_cache(maxsize=None)
def series(order: int) -> Series:
    """Levels of the outer action in T and their derivatives at the saddle (docs/theory.md §2d).

    Inner (density) integral: I_-1 = -theta T - K_-1(theta), I_m = -K_m; ln rho =
    -I_-1*/hbar - sum_m hbar^m I_m* - (1/2) ln(-I_-1''*) + sum_k hbar^k z_k. The outer levels are
    S_-1 = F_-1 + I_-1*, S_0 = F_0 + I_0* + (1/2) ln K_-1'', S_m = I_m* - z_m; by the envelope
    theorem dI_-1*/dT = -theta*.
    """
    K = order
    inner = levels.expand_levels(max(K - 1, 0))
    inner_vals = {}
    for m in range(-1, K):
        for n in range(0, 2 * K + 3):
            inner_vals[levels.level_symbol(m, n)] = -k(m, n)
    lv = {m: {} for m in range(-1, K)}
    D = _Derivation(K)
    # level -1: S_-1^(n) = F_-1^(n) - D^(n-1) theta*
    d = D.to_ring(theta)
    for n in range(1, 2 * K + 3):
        lv[-1][n] = f(-1, n) - D.to_expr(d)
        d = D(d)
    bases = {m: -k(m, 0) - inner.log_partition[m].xreplace(inner_vals) for m in range(1, K)}
    if K >= 1:
        bases[0] = -k(0, 0) + sp.log(k(-1, 2)) / 2
    for m, base in sorted(bases.items()):
        d = D.to_ring(_D(base))  # the first step in SymPy (the logarithm), then in the ring
        for n in range(1, 2 * K - 2 * m + 1):
            lv[m][n] = (f(m, n) if m == 0 else 0) + D.to_expr(d)
            d = D(d)
    return Series(K, lv, levels.expand_levels(K))
