"""Kernel specifications for the loop series of deep linear networks (docs/theory.md §2d, §3).

Per loop order K, one depth-free module ``deep_series_o{K}``:
  likelihood_bare / likelihood_dressed   T-derivatives of the likelihood's levels (T = ln u)
  saddle_equation                        the outer saddle F_-1'(T(theta)) - theta and its slope
  outer_levels                           the levels of the outer action in T (derive.deep.series;
                                         order 0 needs none)
  weights                                <O>_l = sum_n w[l, n] d^nO/dT^n (derive.levels.expand_levels)
  linear_weights                         the same weights on d^nO/du^n, u = e^T
and per depth L and order K one module ``deep_layers_d{L}_o{K}``:
  layers_bare / layers_dressed           T(theta), dT/dtheta and the cumulant sums over the L layers
  theta_limit_bare / theta_limit_dressed the edge of theta's domain for one layer
Everything comes from derive.deep and derive.model by differentiation; nothing is typed here.
"""
from __future__ import annotations

import sympy as sp

from .. import deep, levels, model
from ..emit import KernelSpec, Statement

T = deep.T


def _columns(symbols):
    return {s: i for i, s in enumerate(symbols)}


def _used(order: int, prefix: str):
    """Symbols with a prefix ("k" cumulants, "f" likelihood) in the outer levels the weights use."""
    s = deep.series(order)
    used = set()
    for m, n in level_symbols(order):
        used |= {x for x in sp.sympify(s.levels[m][n]).free_symbols if x.name.startswith(prefix)}
    return used


def cumulant_symbols(order: int):
    """The k(m, j) an order needs, plus K_-1' and K_-1'' (T and its slope along theta)."""
    return sorted(_used(order, "k") | {deep.k(-1, 1), deep.k(-1, 2)}, key=deep._mj)


def likelihood_symbols(order: int):
    """The f(m, n) an order needs, plus F_-1' and F_-1'' (the outer saddle and its slope)."""
    return sorted(_used(order, "f") | {deep.f(-1, 1), deep.f(-1, 2)}, key=deep._mj)


def level_symbols(order: int):
    """(m, n) of the outer levels the weights use, in a fixed order."""
    e = levels.expand_levels(order)
    used = set().union(*(sp.sympify(w).free_symbols for row in e.weights for w in row))
    out = []
    for m in range(-1, order):
        for n in range(1, 2 * order + 3):
            if levels.level_symbol(m, n) in used:
                out.append((m, n))
    return out


def _likelihood_spec(order: int, variant: str) -> KernelSpec:
    """dF[j, i]: d^n/dT^n of the likelihood level m (fit at 1/hbar, output fluctuations at hbar^0 in
    the bare split; both at 1/hbar when dressed) at u = e^T_j, for the (m, n) of likelihood_symbols."""
    terms = model.likelihood_terms()
    S0, S1 = model.split(terms, dressed=variant == "dressed")
    groups = {-1: S0, 0: S1}
    cols = likelihood_symbols(order)
    node = [Statement(f"dF[j, {i}]", sp.S.Zero) for i in range(len(cols))]
    mode = []
    for i, sym in enumerate(cols):
        m, n = deep._mj(sym)
        total = sp.S.Zero
        for tm in groups[m]:
            factor = model.mode_factor(tm.weight)
            expr = tm.expr.subs(model.s, sp.exp(T))
            total += factor * sp.diff(expr, T, n)
        if total != 0:
            mode.append(Statement(f"dF[j, {i}]", sp.factor(sp.together(total)), "+="))
    return KernelSpec(
        name=f"likelihood_{variant}", family="spectral",
        args=["T_nodes", "chi_nodes", "kappa", "g_v", *model.MODE_ARGS, "dF"],
        doc=("d^n/dT^n of the likelihood levels of a deep linear network's action (docs/theory.md §2d, "
             "%s split of §3) at u = exp(T_j): columns %s." % (variant, ", ".join(map(str, cols)))),
        node=node, mode=mode, node_vars=[("T", "T_nodes"), ("chi", "chi_nodes")],
        mode_locals=model.MODE_LOCALS)


def saddle_equation_spec(order: int) -> KernelSpec:
    """(r, dr/dtheta) with r = S_-1'(T) = F_-1'(T) - theta*(T), T = T(theta): the outer saddle."""
    s = deep.series(order)
    slope = sp.Symbol("dT")
    r = s.levels[-1][1]
    dr = sp.expand(s.levels[-1][2].subs(deep.k(-1, 2), -slope) * slope)
    return KernelSpec(
        name="saddle_equation", family="scalar", args=["theta", "dT", "fn1_1", "fn1_2"],
        doc=("The saddle of a deep linear network's action in the conjugate variable theta (docs/theory.md "
             "§2d): r = F_-1'(T) - theta with T = T(theta), and dr/dtheta given dT = dT/dtheta."),
        node=[Statement("r", r), Statement("dr", dr)], returns="r, dr")


def outer_levels_spec(order: int) -> KernelSpec:
    s = deep.series(order)
    kc = _columns(cumulant_symbols(order))
    fc = _columns(likelihood_symbols(order))
    node = [Statement(f"lev[j, {i}]", s.levels[m][n]) for i, (m, n) in enumerate(level_symbols(order))]
    used = set().union(*(sp.sympify(st.expr).free_symbols for st in node)) if node else set()
    prelude = [("theta", "theta_nodes[j]")] if deep.theta in used else []
    prelude += [(sym.name, f"kap[j, {i}]") for sym, i in kc.items() if sym in used]
    prelude += [(sym.name, f"dF[j, {i}]") for sym, i in fc.items() if sym in used]
    return KernelSpec(
        name="outer_levels", family="row_map", args=["theta_nodes", "kap", "dF", "lev"],
        doc=("lev[j, i]: the T-derivatives (m, n) = LEVELS[i] of the outer action's levels for a deep linear "
             "network (docs/theory.md §2d), from the cumulant sums kap, the likelihood derivatives dF and "
             "the inner saddle theta. Derived by derive.deep.series."),
        node=node, prelude=prelude, rows="theta_nodes.shape[0]")


def weights_spec(order: int) -> KernelSpec:
    e = levels.expand_levels(order)
    cols = {levels.level_symbol(m, n): i for i, (m, n) in enumerate(level_symbols(order))}
    node = [Statement(f"w[j, {l}, {n}]", e.weights[l][n]) for l in range(order + 1) for n in range(2 * order + 1)]
    return KernelSpec(
        name="weights", family="row_map", args=["lev", "w"],
        doc=("Loop weights to order %d for an action with levels hbar^-1 .. hbar^%d (docs/theory.md §2d, §3): "
             "<O>_l = sum_n w[j, l, n] d^nO/dT^n at the saddle. Derived by derive.levels.expand_levels."
             % (order, order - 1)),
        node=node, prelude=[(sym.name, f"lev[j, {i}]") for sym, i in cols.items()], rows="lev.shape[0]")


def linear_weights_spec(order: int) -> KernelSpec:
    """wu[j, l, k] with sum_n wT[l, n] d^nO/dT^n = sum_k wu[l, k] d^kO/du^k at u = e^T (chain rule,
    derived by differentiating O(exp(T)))."""
    nmax = 2 * order
    g = sp.Function("g")
    u = sp.Symbol("u", positive=True)
    G = [sp.Symbol(f"G_{k}") for k in range(nmax + 1)]
    wT = [[sp.Symbol(f"wT_{l}_{n}") for n in range(nmax + 1)] for l in range(order + 1)]
    chain = []
    for n in range(nmax + 1):
        e = sp.diff(g(sp.exp(T)), T, n)
        e = e.replace(lambda a: isinstance(a, sp.Subs),
                      lambda a: G[a.expr.derivative_count] if isinstance(a.expr, sp.Derivative) else a)
        e = e.subs(g(sp.exp(T)), G[0]).subs(sp.exp(T), u)
        chain.append(sp.expand(e))
    node = []
    for l in range(order + 1):
        total = sp.expand(sum(wT[l][n] * chain[n] for n in range(nmax + 1)))
        for kk in range(nmax + 1):
            node.append(Statement(f"wu[j, {l}, {kk}]", total.coeff(G[kk])))
    prelude = [("u", "u_nodes[j]")] + [(wT[l][n].name, f"wT[j, {l}, {n}]")
                                       for l in range(order + 1) for n in range(nmax + 1)]
    return KernelSpec(
        name="linear_weights", family="row_map", args=["u_nodes", "wT", "wu"],
        doc=("Loop weights on d^kO/du^k from weights on d^nO/dT^n at u = exp(T) (docs/theory.md §2d): the "
             "chain rule of O(exp(T)), derived by differentiation."),
        node=node, prelude=prelude, rows="u_nodes.shape[0]")


def layers_spec(depth: int, order: int, variant: str) -> KernelSpec:
    """T(theta) = sum_l t_l*(theta), dT/dtheta and kap[j, i] = sum_l W_l^(j)(theta) for one depth."""
    widths = [sp.Symbol(f"N_{l}") for l in range(1, depth + 1)]
    cols = cumulant_symbols(order)
    nord = max(order, 1)

    def total(m, j):
        e = deep.layer_cumulant_derivative(variant, nord, m, j)
        return sum((e.subs(model.N, w) for w in widths), sp.S.Zero)

    node = [Statement("T_nodes[j]", -total(-1, 1)), Statement("dT_nodes[j]", -total(-1, 2))]
    node += [Statement(f"kap[j, {i}]", total(*deep._mj(sym))) for i, sym in enumerate(cols)]
    prelude = [("theta", "theta_nodes[j]")] + [(w.name, f"widths[{l}]") for l, w in enumerate(widths)]
    return KernelSpec(
        name=f"layers_{variant}", family="row_map",
        args=["theta_nodes", "widths", "T_nodes", "dT_nodes", "kap"],
        doc=("The %d layers of a deep linear network at the conjugate variable theta_j (docs/theory.md §2d, "
             "%s split): T = ln u at the layer saddles, dT/dtheta, and kap[j, i] = sum_l W_l^(j)(theta), "
             "the cumulant function's derivatives for the columns CUMULANTS." % (depth, variant)),
        node=node, prelude=prelude, rows="theta_nodes.shape[0]")


def theta_limit_spec(variant: str) -> KernelSpec:
    return KernelSpec(
        name=f"theta_limit_{variant}", family="scalar", args=["N"],
        doc="The theta at which a layer of width N has its saddle at s = 0: the edge of theta's domain "
            "(docs/theory.md §2d, %s split)." % variant,
        node=[Statement("out", deep.theta_limit(variant))], returns="out")


def _pairs(symbols):
    return tuple(deep._mj(s) for s in symbols)


def modules(max_order: int = 3, max_depth: int = 3) -> dict:
    out = {}
    for K in range(max_order + 1):
        sizes = {"N_TERMS": K + 1, "N_TABLE": 2 * K + 1, "CUMULANTS": _pairs(cumulant_symbols(K)),
                 "LIKELIHOOD": _pairs(likelihood_symbols(K)), "LEVELS": tuple(level_symbols(K))}
        out[f"deep_series_o{K}"] = (
            f"deep_series_o{K}: deep linear networks, loop order {K}",
            "Loop series of a deep linear network's L-field scalar action (docs/theory.md §2d, §3) to order %d, "
            "for any depth: likelihood levels in T = ln u, the outer saddle, the outer levels, and the loop "
            "weights on T- and on u-derivatives." % K,
            "derive.deep.series + derive.levels.expand_levels + derive.model.likelihood_terms",
            K, sizes,
            [_likelihood_spec(K, "bare"), _likelihood_spec(K, "dressed"), saddle_equation_spec(K)]
            + ([outer_levels_spec(K)] if level_symbols(K) else []) + [weights_spec(K), linear_weights_spec(K)],
        )
        for L in range(1, max_depth + 1):
            out[f"deep_layers_d{L}_o{K}"] = (
                f"deep_layers_d{L}_o{K}: deep linear networks, {L} hidden layers, loop order {K}",
                "The layers of a deep linear network with %d hidden layers (docs/theory.md §2d): the layer "
                "saddles in the conjugate variable theta and the cumulant sums that loop order %d needs." % (L, K),
                "derive.deep.layer_cumulants",
                K, {"DEPTH": L, "CUMULANTS": _pairs(cumulant_symbols(K))},
                [layers_spec(L, K, "bare"), layers_spec(L, K, "dressed"),
                 theta_limit_spec("bare"), theta_limit_spec("dressed")],
            )
    return out
