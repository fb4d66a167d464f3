"""LaTeX of the deep linear network's series (`msat latex --depth L`, docs/formulas.md; docs/theory.md §2d).

Printed from the objects the emitter uses (derive.deep, derive.levels, derive.model) with the
settings of derive.printing.
"""
from __future__ import annotations

import sympy as sp

from . import model
from .printing import tex


def deep_action(depth: int) -> sp.Expr:
    """The L-field action of docs/theory.md §2d at one depth, from derive.model's terms with s_l per
    layer and u = s_1 ... s_L in the likelihood terms."""
    ss = [sp.Symbol(f"s_{l}", positive=True) for l in range(1, depth + 1)]
    Ns = [sp.Symbol(f"N_{l}", positive=True) for l in range(1, depth + 1)]
    u = sp.Mul(*ss)
    lam = sp.Symbol(r"\lambda_k")
    total = sp.S.Zero
    for term in model.action():
        if term.klass in ("prior", "measure"):
            total += sum((term.expr.subs({model.s: s, model.N: N}) for s, N in zip(ss, Ns)), sp.S.Zero)
        else:
            expr = term.expr.subs(model.lam, lam).subs(model.s, u)
            weight = sp.Symbol(r"\tilde y_k^2") if term.weight == "yt2" else sp.S.One
            total += sp.Sum(weight * expr, (sp.Symbol("k"), 1, sp.Symbol("P")))
    return total


def _deep_rename(expr):
    """k(m, j) -> K_m^{(j)}, f(m, n) -> F_m^{(n)}, level symbols -> S_m^{(n)} (m the power of hbar)."""
    repl = {}
    for sym in expr.free_symbols:
        name = sym.name
        head, _, n = name.partition("_")
        if head.startswith(("k", "f")) and n and head[1:].lstrip("n").isdigit():
            m = ("-" if head[1] == "n" else "") + head.lstrip("kfn")
            repl[sym] = sp.Symbol(f"{head[0].upper()}_{{{m}}}^{{({n})}}")
        elif head in ("A", "B") or head.startswith("C"):
            m = {"A": "-1", "B": "0"}.get(head, head[1:])
            repl[sym] = sp.Symbol(f"S_{{{m}}}^{{({n})}}")
        elif head == "O":
            repl[sym] = sp.Symbol(f"O^{{({n})}}" if n != "0" else "O")
        elif name == "theta":
            repl[sym] = sp.Symbol(r"\theta")
    return expr.xreplace(repl)


def deep_lines(depth: int, order: int) -> list[str]:
    """The deep linear network's L-field action, one layer's cumulant levels, the outer levels and the
    loop coefficients (docs/theory.md §2d), as LaTeX lines."""
    from . import deep

    fields = ", ".join(f"s_{l}" for l in range(1, depth + 1)) if depth <= 2 else rf"s_1, \dots, s_{{{depth}}}"
    out = [rf"S({fields}) = " + tex(deep_action(depth))]
    for variant in deep.VARIANTS:
        for m, W in deep.layer_cumulants(variant, max(order, 1)).items():
            out.append(rf"W^{{\mathrm{{{variant}}}}}_{{{m}}}(\theta) = " + tex(_deep_rename(W)))
    layers = " + ".join(rf"W_m(\theta; N_{{{l}}})" for l in range(1, depth + 1))
    out.append(rf"K_m(\theta) = {layers},\quad T = \ln u = -K_{{-1}}^{{(1)}}(\theta),\quad "
               r"\text{saddle: } S_{-1}^{(1)} = 0")
    ser = deep.series(order)
    for m, row in ser.levels.items():
        for n, e in row.items():
            out.append(rf"S_{{{m}}}^{{({n})}} = " + tex(_deep_rename(sp.expand(e))))
    e = ser.expansion
    for l in range(order + 1):
        c = sum(w * o for w, o in zip(e.weights[l], e.O))
        out.append(rf"c_{{{l}}} = " + tex(_deep_rename(sp.expand(c))))
    return out


def deep_text(depth: int, order: int) -> str:
    """`msat latex --depth L`: the deep linear network's action and its loop series."""
    lines = [f"% msat latex --depth {depth}: deep linear network (docs/theory.md §2d), loop order {order}",
             "% the L-field action; one layer's cumulant levels W_m (hbar^m) in the conjugate variable theta,",
             "% K_m = sum over layers of W_m, F_m the likelihood's levels in T = ln u;",
             "% the outer action's levels S_m^(n) (T-derivatives at the saddle) and <O> = sum_l c_l"]
    lines += deep_lines(depth, order)
    return "\n".join(lines) + "\n"


def deep_section(depth: int = 2, order: int = 1) -> list[str]:
    out = ["## Deep linear networks (docs/theory.md §2d)", "",
           f"The action of a network with {depth} hidden layers, one layer's cumulant levels $W_m$ (the "
           "coefficient of $\\hbar^m$ of $\\ln\\int dt\\, e^{-A(t) - \\theta t/\\hbar}$, bare and dressed), "
           "the levels $S_m^{(n)}$ of the outer action in $T = \\ln u$ with $K_m = \\sum_l W_m$ and the "
           "likelihood's levels $F_m$, and the loop coefficients at order "
           f"{order} (`msat latex --depth L --order K` prints any order). Derived by `msat.derive.deep`.", ""]
    for line in deep_lines(depth, order):
        out += ["$$", line, "$$", ""]
    return out
