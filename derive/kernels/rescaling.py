"""Kernel specifications for the kernel-rescaling field (docs/theory.md §2a, §3): what generated/ holds.

For each loop order L one module ``rescaling_o{L}`` with
  action_derivatives   S0^(n), S1^(n) at given s, n = 0..2L+2 (hbar-split of docs/theory.md §3)
  weights_bare         w[l, n]: <O>_l = sum_n w[l, n] O^(n), saddle of S0 (A = S0, B = S1)
  weights_dressed      the same with every term in the saddle (A = S0 + S1)
  observable_tables    d^n/ds^n of each observable's summand and scalar part, n = 0..2L
  square_derivatives   d^n/ds^n of O(s)^2 from those of O (for truncated variances, docs/theory.md §4)
and one order-free module ``rescaling_exact`` with the cancellation-free S(s0 e^t) - S(s0) for the
exact 1-D integral. Every expression comes from derive.model / derive.loops by differentiation
and expansion; nothing numerical is typed here.
"""
from __future__ import annotations

import sympy as sp

from .. import loops, model
from ..emit import KernelSpec, Statement

PARAM_ARGS = ["N", "kappa", "g_v"]


def _derivatives(expr, nmax):
    out = [expr]
    for _ in range(nmax):
        out.append(sp.diff(out[-1], model.s))
    return [sp.factor(sp.together(e)) if e != 0 else sp.S.Zero for e in out]


def _action_statements(orders, groups=None):
    """Statements d^n S0/ds^n -> dS0[j, i], d^n S1/ds^n -> dS1[j, i] for n = orders[i] (or, with
    ``groups``, for each (target, terms) pair given)."""
    nmax = max(orders)
    if groups is None:
        S0, S1 = model.split(model.action(), dressed=False)
        groups = (("dS0", S0), ("dS1", S1))
    node, mode = [], []
    for target, terms in groups:
        scalar = _derivatives(sum((t.expr for t in terms if t.weight is None), sp.S.Zero), nmax)
        for i, n in enumerate(orders):
            node.append(Statement(f"{target}[j, {i}]", scalar[n]))
        per_weight = {}
        for t in terms:
            if t.weight is not None:
                per_weight[t.weight] = per_weight.get(t.weight, sp.S.Zero) + t.expr
        for w, expr in sorted(per_weight.items()):
            ds = _derivatives(expr, nmax)
            factor = model.mode_factor(w)
            for i, n in enumerate(orders):
                mode.append(Statement(f"{target}[j, {i}]", factor * ds[n], "+="))
    return node, mode


def _action_spec(name: str, orders, doc: str) -> KernelSpec:
    """A spectral kernel filling dS0[j, i], dS1[j, i] with the derivatives orders[i] of S0 and S1."""
    node, mode = _action_statements(list(orders))
    return KernelSpec(name=name, family="spectral",
                      args=["s_nodes", "chi_nodes", "N", "kappa", "g_v", *model.MODE_ARGS, "dS0", "dS1"],
                      doc=doc, node=node, mode=mode, mode_locals=model.MODE_LOCALS)


def action_derivatives_spec(order: int) -> KernelSpec:
    """S0^(n)(s), S1^(n)(s) for n = 0..2L+2 as scalar part + spectral sums."""
    nmax = 2 * order + 2
    return _action_spec(
        "action_derivatives", range(nmax + 1),
        "d^n S0/ds^n and d^n S1/ds^n, n = 0..%d, at each node (s_j, chi_j) (docs/theory.md §2a, §3). "
        "S0 = prior + fit (1/hbar), S1 = output fluctuations + measure (hbar^0); "
        "spectral sums over the eigenpairs (lam_k, yt2_k = (U^T y)_k^2) of K." % nmax)


def saddle_equation_spec() -> KernelSpec:
    """S0', S0'', S1', S1'': the saddle equations (bare S0' = 0, dressed S0' + S1' = 0) and the
    curvatures their Newton steps need; no value of S, so no logarithms per mode."""
    return _action_spec(
        "saddle_equation", (1, 2),
        "Saddle equation of the kernel-rescaling action (docs/theory.md §2a, §3, §5): dS0[j] = (S0', S0''), "
        "dS1[j] = (S1', S1'') at s_j; the bare saddle solves S0' = 0, the dressed S0' + S1' = 0.")


def weights_spec(order: int, dressed: bool) -> KernelSpec:
    """w[j, l, n] with <O>_l = sum_n w[l, n] O^(n) (derive.loops.expand)."""
    exp = loops.expand(order, dressed)
    nA = 2 * order + 3
    prelude = [(f"A_{n}", f"dA[j, {n}]") for n in range(2, nA)]
    if not dressed:
        prelude += [(f"B_{n}", f"dB[j, {n}]") for n in range(1, 2 * order + 1)]
    node = []
    for l in range(order + 1):
        for n in range(2 * order + 1):
            node.append(Statement(f"w[j, {l}, {n}]", exp.weights[l][n]))
    args = ["dA", "w"] if dressed else ["dA", "dB", "w"]
    # only keep prelude symbols that appear (avoids unused locals)
    used = set().union(*[sp.sympify(st.expr).free_symbols for st in node]) if node else set()
    prelude = [(n, src) for n, src in prelude if sp.Symbol(n) in used]
    what = "all terms in the saddle: A = S^(n)" if dressed else "A = S0^(n) (prior + fit), B = S1^(n)"
    return KernelSpec(
        name="weights_dressed" if dressed else "weights_bare",
        family="row_map",
        args=args,
        doc=(
            "Loop weights to order %d (docs/theory.md §3), %s at the saddle: "
            "<O>_l = sum_n w[j, l, n] O^(n)(s*_j). Derived by derive.loops.expand." % (order, what)
        ),
        node=node,
        prelude=prelude,
        rows="dA.shape[0]",
    )


def observable_tables_spec(order: int) -> KernelSpec:
    """Tables of d^n/ds^n of each observable's summand (per mode) and scalar part, n = 0..2L."""
    nmax = 2 * order
    node, mode, args_out = [], [], []
    for obs in model.observables():
        if obs.summand != 0:
            args_out.append(f"{obs.name}_modes")
            for n, e in enumerate(_derivatives(obs.summand, nmax)):
                mode.append(Statement(f"{obs.name}_modes[j, {n}, k]", e))
        if obs.scalar != 0:
            args_out.append(f"{obs.name}_scalar")
            for n, e in enumerate(_derivatives(obs.scalar, nmax)):
                node.append(Statement(f"{obs.name}_scalar[j, {n}]", e))
    return KernelSpec(
        name="observable_tables",
        family="spectral",
        args=["s_nodes", "chi_nodes", "kappa", "g_v", "lam_modes"] + args_out,
        doc=(
            "d^n/ds^n, n = 0..%d, of the observables of docs/theory.md §2a at each node: per-mode summands "
            "(contracted by runtime with U, k*^T U) and scalar parts. Observables: %s."
            % (nmax, ", ".join(o.name for o in model.observables()))
        ),
        node=node,
        mode=mode,
    )


def square_derivatives_spec(order: int) -> KernelSpec:
    """d^n/ds^n of O(s)^2 from O^(0..n), n = 0..2L (Leibniz rule, derived by SymPy)."""
    nmax = 2 * order
    f = sp.Function("f")(model.s)
    M = [sp.Symbol(f"M_{i}") for i in range(nmax + 1)]
    node = []
    for n in range(nmax + 1):
        e = sp.diff(f**2, model.s, n)
        for i in range(n, 0, -1):
            e = e.subs(sp.Derivative(f, (model.s, i)), M[i])
        e = sp.expand(e.subs(f, M[0]))
        node.append(Statement(f"out[{n}, j]", e))
    return KernelSpec(
        name="square_derivatives",
        family="row_map",
        args=["M", "out"],
        doc="d^n/ds^n of O(s)^2 given M[i, j] = O^(i)(s) for n = 0..%d (columns j independent)." % nmax,
        node=node,
        prelude=[(f"M_{i}", f"M[{i}, j]") for i in range(nmax + 1)],
        rows="M.shape[1]",
    )


def truncated_variance_spec(order: int) -> KernelSpec:
    """out[l] = v[l] + m2[l] - sum_i m[i] m[l-i]: the variance series <v> + <m^2> - <m>^2 with the
    square of the mean series truncated at order L (docs/theory.md §4, derive.loops.series_product)."""
    L = order
    v, m2, m = ([sp.Symbol(f"{name}_{l}") for l in range(L + 1)] for name in ("v", "m2", "m"))
    square = loops.series_product(m, m, L)
    node = [Statement(f"out[{l}, j]", v[l] + m2[l] - square[l]) for l in range(L + 1)]
    prelude = [(f"{name}_{l}", f"{name}[{l}, j]") for name in ("v", "m2", "m") for l in range(L + 1)]
    return KernelSpec(
        name="truncated_variance",
        family="row_map",
        args=["v", "m2", "m", "out"],
        doc="Coefficients l = 0..%d of the variance series <v> + <m^2> - <m>^2, the square of the mean "
            "series truncated at order %d (docs/theory.md §4); columns j independent." % (L, L),
        node=node,
        prelude=prelude,
        rows="m.shape[1]",
    )


def _difference_spec(name: str, terms, doc: str) -> KernelSpec:
    """A spectral kernel out[j] = sum of the terms at s0 exp(t_j) minus at s0, cancellation-free."""
    delta, delta_expr, diffs = model.action_difference(terms)
    node = [Statement("out[j]", sum((d for tm, d in diffs if tm.weight is None), sp.S.Zero))]
    per_weight = {}
    for tm, d in diffs:
        if tm.weight is not None:
            per_weight.setdefault(tm.weight, sp.S.Zero)
            per_weight[tm.weight] += model.mode_factor(tm.weight) * d
    mode = [Statement("out[j]", sum(per_weight.values(), sp.S.Zero), "+=")]
    args = ["t_nodes", "s0", "chi", "N", "kappa", "g_v", *model.MODE_ARGS, "out"]
    if not any(tm.klass == "prior" for tm in terms):
        args.remove("N")
    return KernelSpec(name=name, family="spectral", args=args, doc=doc, node=node, mode=mode,
                      prelude=[("delta", delta_expr)], node_vars=[("t", "t_nodes")], mode_locals=model.MODE_LOCALS)


def action_difference_spec() -> KernelSpec:
    """S(s0 e^t) - S(s0) per node t, cancellation-free (docs/theory.md §2a; exact integral)."""
    return _difference_spec(
        "action_difference", model.action(),
        "S(s) - S(s0) at s = s0 exp(t_j) for the exact 1-D integral of docs/theory.md §2a, written with "
        "log1p/expm1 and factored differences so that it keeps full absolute accuracy although "
        "S itself is O(N chi).")


def deep_specs() -> list:
    """The exact integral of a deep linear network over the total rescaling u (docs/theory.md §2d):
    the likelihood part of S (fit + output fluctuations, a function of u alone), its u-derivatives,
    and each layer's tilted log-Gamma prior in t = ln s_l relative to its mode."""
    like = model.likelihood_terms()
    node, mode = _action_statements([1, 2], groups=(("dF", like),))
    form, mode_t, k = model.layer_log_density()
    return [
        _difference_spec("likelihood_difference", like,
                         "F(u0 exp(t_j)) - F(u0), F = fit + output fluctuations of S as a function of the total "
                         "rescaling u (docs/theory.md §2d), cancellation-free."),
        KernelSpec(name="likelihood_slopes", family="spectral",
                   args=["s_nodes", "chi_nodes", "kappa", "g_v", *model.MODE_ARGS, "dF"],
                   doc="dF[j] = (F'(u), F''(u)) at u = s_nodes[j]: the slopes of the likelihood part of S in the "
                       "total rescaling (docs/theory.md §2d).", node=node, mode=mode, mode_locals=model.MODE_LOCALS),
        KernelSpec(name="layer_mode", family="scalar", args=["N", "theta"],
                   doc="(mode, k): the mode in t = ln s of one layer's Gamma prior tilted by exp(theta t), and its "
                       "shape k = N/2 + theta (docs/theory.md §2d).",
                   node=[Statement("mode", mode_t), Statement("k", k)], returns="mode, k"),
        KernelSpec(name="layer_log_density", family="row_map", args=["delta_nodes", "k", "out"],
                   doc="log density of t = ln s_l at mode + delta relative to the mode, for a tilted layer prior of "
                       "shape k: -k (expm1(delta) - delta) (docs/theory.md §2d).",
                   node=[Statement("out[j]", form.subs(model.N / 2 + model.theta, model.shape))],
                   prelude=[("delta", "delta_nodes[j]")], rows="delta_nodes.shape[0]"),
    ]


def hidden_weight_direction_spec() -> KernelSpec:
    """u^T (1/N) E[W^T W | s] u - g_w/D per node from Q1(s), Q2(s) (docs/theory.md §2a)."""
    doc = ("Directional hidden-weight second moment given s (docs/theory.md §2a): u^T (1/N) E[W^T W | s] u - g_w/D "
           "for a unit vector u, from Q1 = z^T (g_v s K + kappa)^-1 z and Q2 = z^T (g_v s K + kappa)^-1 yt "
           "with z = sqrt(g_w/D) U^T X u.")
    prelude = [("s", "s_nodes[j]"), ("Q1", "Q1_nodes[j]"), ("Q2", "Q2_nodes[j]")]
    return KernelSpec(name="hidden_weight_direction", family="row_map",
                      args=["s_nodes", "chi", "N", "g_v", "g_w", "D", "Q1_nodes", "Q2_nodes", "out"], doc=doc,
                      node=[Statement("out[j]", model.hidden_weight_direction())], prelude=prelude,
                      rows="s_nodes.shape[0]")


def direction_modes_spec() -> KernelSpec:
    return KernelSpec(
        name="direction_modes",
        family="numpy_function",
        args=["U", "X", "u", "g_w", "D"],
        doc="z = sqrt(g_w/D) U^T X u: a unit weight-space direction u in the eigenbasis U of K (docs/theory.md §2a).",
        node=[Statement("z", model.direction_modes())],
        returns="z",
    )


def modules(max_order: int = 3):
    """All generated modules: {module name: (title, doc, derivation, order, nmax, [specs])}."""
    out = {}
    for L in range(max_order + 1):
        A, _, O = loops.derivative_symbols(L)
        sizes = {"NMAX": len(A) - 1, "N_ACTION": len(A), "N_TABLE": len(O), "N_TERMS": L + 1}
        specs = [
            action_derivatives_spec(L),
            weights_spec(L, dressed=False),
            weights_spec(L, dressed=True),
            observable_tables_spec(L),
            square_derivatives_spec(L),
            truncated_variance_spec(L),
        ]
        out[f"rescaling_o{L}"] = (
            f"rescaling_o{L}: kernel-rescaling field, loop order {L}",
            "Kernel-rescaling field of a linear network (docs/theory.md §2a), loop expansion to order %d "
            "(docs/theory.md §3): action derivatives, loop weights (bare and dressed), observable tables." % L,
            "derive.model.action + derive.model.observables + derive.loops.expand",
            L,
            sizes,
            specs,
        )
    out["rescaling_saddle"] = (
        "rescaling_saddle: kernel-rescaling field, saddle equations",
        "Saddle equations of the kernel-rescaling action (docs/theory.md §2a, §5), bare and dressed.",
        "derive.model.action",
        None,
        2,
        [saddle_equation_spec()],
    )
    out["rescaling_exact"] = (
        "rescaling_exact: kernel-rescaling field, exact 1-D integrand",
        "Exact 1-D integral over s (docs/theory.md §2a): S(s) - S(s0) without cancellation, and the "
        "directional hidden-weight moment given s.",
        "derive.model.action_difference",
        None,
        0,
        [action_difference_spec(), hidden_weight_direction_spec(), direction_modes_spec()] + deep_specs(),
    )
    return out
