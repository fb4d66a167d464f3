"""Kernel specifications for the Wishart field's one loop (docs/theory.md §2c): generated/kernel_field.py.

derive.kernelfield.structured() gives every derivative as products of basis quantities
(diag(mu), b, b^T, Q_T, the direction, Gaussian moments E[X W X]); this module prints those products
as NumPy code. Diagonal factors become broadcasts, b b^T an outer product, so each emitted function
costs O(n^3) at most (a few matrix products) and nothing of size n^2 x n^2 appears.
"""
from __future__ import annotations

import sympy as sp

from .. import fieldbasis, gaussian, indices, kernelfield as kf
from ..emit import KernelSpec, Statement, code, numpy_code

_LEAVES = {"Mu": ("diag", "mu"), "b": ("col", "b"), "bT": ("row", "b"), "Q": ("mat", "QT"),
           "X": ("mat", "Z"), "p": ("col", "u"), "pT": ("row", "u")}


def _combine(a, b):
    (ka, ca), (kb, cb) = a, b
    if ka == "one":
        return b
    if kb == "one":
        return a
    # an outer product u v^T stays a pair of vectors: (u v^T) M = u (M^T v)^T costs O(n^2)
    if ka == "col" and kb == "row":
        return "outer", (ca, cb)
    if ka == "outer":
        u, v = ca
        if kb in ("mat", "diag"):
            return "outer", (u, _combine(("row", v), b)[1])
        if kb == "col":
            return "col", f"({u} * {_combine(('row', v), b)[1]})"
    if kb == "outer":
        u, v = cb
        if ka in ("mat", "diag"):
            return "outer", (_combine(a, ("col", u))[1], v)
        if ka == "row":
            return "row", f"({_combine(a, ('col', u))[1]} * {v})"
    if ka == "outer" or kb == "outer":
        return "mat", _combine(("mat", dense(a)), ("mat", dense(b)))[1]
    rules = {
        ("diag", "diag"): ("diag", "{a} * {b}"),
        ("diag", "mat"): ("mat", "{a}[:, None] * {b}"),
        ("mat", "diag"): ("mat", "{a} * {b}[None, :]"),
        ("diag", "col"): ("col", "{a} * {b}"),
        ("row", "diag"): ("row", "{a} * {b}"),
        ("mat", "mat"): ("mat", "{a} @ {b}"),
        ("mat", "col"): ("col", "{a} @ {b}"),
        ("row", "mat"): ("row", "{a} @ {b}"),
        ("row", "col"): ("scalar", "{a} @ {b}"),
    }
    if ka == "scalar" or kb == "scalar":
        return (kb if ka == "scalar" else ka), f"({ca} * {cb})"
    kind, fmt = rules[(ka, kb)]
    return kind, "(" + fmt.format(a=ca, b=cb) + ")"


def product(tokens, moments=None):
    """(kind, code) of a product of basis tokens; ("moment", W) is E[X W X], named once per
    distinct W in ``moments`` ({W code: local name}) so that each is computed once."""
    out = ("one", "")
    for t in tokens:
        if isinstance(t, tuple):
            w = dense(product(t[1]))
            if moments is None:
                leaf = ("mat", f"moment({w})")
            else:
                leaf = ("mat", moments.setdefault(w, f"E{len(moments)}"))
        else:
            leaf = _LEAVES[t]
        out = _combine(out, leaf)
    return out


def dense(pc):
    kind, c = pc
    if kind == "outer":
        return f"numpy.outer({c[0]}, {c[1]})"
    return {"one": "numpy.eye(n)", "diag": f"numpy.diag({c})", "mat": c}[kind]


def _vector(pc):
    kind, c = pc
    if kind == "one":
        return "numpy.ones(n)"
    if kind not in ("diag", "col"):
        raise ValueError(f"expected a vector, got {kind}")
    return c


def _moment_lines(moments):
    return [f"{name} = moment({w})" for w, name in moments.items()]


def _trace(pc):
    """The trace of a product (kind, code), without forming an outer product."""
    kind, c = pc
    if kind == "outer":
        return f"({c[0]} @ {c[1]})"
    return {"scalar": c, "diag": f"numpy.sum({c})", "mat": f"numpy.trace({c})"}[kind]


def _sum(parts):
    return " + ".join(parts) if parts else "0.0"


def _spec(name, args, doc, lines, returns):
    return KernelSpec(name=name, family="numpy_lines", args=args, doc=doc,
                      extra={"lines": lines}, returns=returns)


def specs():
    st = fieldbasis.structured()
    w2, w1 = st.weights
    out = []
    for inst, (c0, q) in kf.priors().items():
        args = {"kernel": ["N", "P"], "weights": ["N", "D", "g_w"]}[inst]
        what = {"kernel": "Q = q K^-1 (kernel field C, n = P)",
                "weights": "Q = q I (weight field S_w, n = D)"}[inst]
        out.append(_spec(f"prior_{inst}", args,
                         f"(c0, q) of the Wishart prior: -c0 logdet F + tr(Q F), {what} (docs/theory.md §2c).",
                         [f"c0 = {code(c0)}", f"q = {code(q)}"], "c0, q"))
    out.append(_spec("action", ["logdet_F", "tr_QF", "yAy", "logdet_A", "c0", "chi"],
                     "S(F) from its four traces (docs/theory.md §2c).",
                     [f"S = {code(kf.scalar_action())}"], "S"))
    grad = [f"({code(c)}) * {dense(product(L))}" for c, L in st.gradient]
    out.append(_spec("gradient", ["QT", "mu", "b", "c0", "chi", "g_v"],
                     "G with dS[Y] = tr(G Y) for symmetric Y, in the basis (Q_T = T^T Q T).",
                     ["n = mu.shape[0]", f"G = {_sum(grad)}"], "0.5 * (G + G.T)"))
    had = [f"({code(c)}) * numpy.outer({_vector(product(d1))}, {_vector(product(d2))})"
           for c, d1, d2 in st.hadamard]
    (k, _), = st.lowrank
    out.append(_spec("hessian", ["mu", "c0", "chi", "g_v"],
                     "d2S[X, X] = sum_ij lam_ij X_ij^2 + k b^T X diag(mu) X b, in the basis.",
                     ["n = mu.shape[0]", f"lam = {_sum(had)}", f"k = {code(k)}"],
                     "0.5 * (lam + lam.T), k"))
    moments = {}  # one set of Gaussian moments E[X W X] for the source and the readout
    src = [f"({code(c)}) * {dense(product(L1 + (('moment', W),) + L3, moments))}"
           for c, L1, W, L3 in st.source]
    beta = [f"({code(c)}) * {_vector(product(R))}" for c, R in st.readout]
    curv = [f"({code(c)}) * {product(L + (('moment', W),) + R, moments)[1]}" for c, L, W, R in st.curvature]
    slope = [f"({code(c)}) * {product(L + ('X',) + R)[1]}" for c, L, R in st.slope]
    vt = fieldbasis.variance_structured()
    tree = [f"({code(c)}) * {_trace(product(L))}" for c, L in vt.tree]
    vslope = [f"({code(c)}) * {_trace(product(L + ('X',)))}" for c, L in vt.slope]
    vcurv = [f"({code(c)}) * {_trace(product((('moment', W),) + R, moments))}" for c, W, R in vt.curvature]
    spread = [f"({code(c)}) * {_trace(product((('moment', W),) + R, moments))}" for c, W, R in vt.spread]
    names = list(moments.values())
    out.append(_spec("loop_moment_weights", ["mu", "b"],
                     "The matrices W whose Gaussian moments E[X W X] the loop source, the readout and the "
                     "test variance need, in the order of their arguments %s." % ", ".join(names),
                     ["n = mu.shape[0]"], "(" + ", ".join(moments) + ",)"))
    out.append(_spec("loop_source", [*names, "mu", "b", "c0", "chi", "g_v"],
                     "Psi with E d3S[X, X, Y] = tr(Psi Y), X ~ N(0, H^-1), from the moments E[X W X] "
                     "(loop_moment_weights).",
                     ["n = mu.shape[0]", f"Psi = {_sum(src)}"], "0.5 * (Psi + Psi.T)"))
    out.append(_spec("readout_one_loop", [*names, "Z", "mu", "b", "g_v"],
                     "(beta + %s E d2beta[X, X] + %s dbeta[Z], beta) in the basis: the first-order "
                     "loop term of the readout, Z = H^-1 Psi (docs/theory.md §2c; weights from "
                     "derive.loops.expand_components)." % (w2, w1),
                     ["n = mu.shape[0]", f"beta = {_sum(beta)}", f"curvature = {_sum(curv)}",
                      f"slope = {_sum(slope)}"],
                     f"beta + ({code(sp.nsimplify(w2))}) * curvature + ({code(sp.nsimplify(w1))}) * slope, beta"))
    out.append(_spec("test_variance_one_loop", [*names, "Z", "u", "s2", "mu", "b", "N", "chi", "g_v"],
                     "(v + %s E d2v[X, X] + %s dv[Z] + %s E (p^T dbeta[X])^2, v): one test output's variance at "
                     "one loop and at the saddle, u = T^T p its covector in the basis, Z = H^-1 Psi; the last "
                     "term is the test mean's variance over the field, <m^2> - <m>^2 to first order "
                     "(docs/theory.md §2c)." % (w2, w1, 2 * w2),
                     ["n = mu.shape[0]", f"v = {code(vt.constant)} + {_sum(tree)}", f"curvature = {_sum(vcurv)}",
                      f"slope = {_sum(vslope)}", f"spread = {_sum(spread)}"],
                     f"v + ({code(sp.nsimplify(w2))}) * curvature + ({code(sp.nsimplify(w1))}) * slope"
                     f" + ({code(sp.nsimplify(2 * w2))}) * spread, v"))
    return out + gaussian_specs() + basis_specs()


def _index(targets, names):
    return indices.numpy_lines(targets, {k: k for k in names}, code)


def gaussian_specs():
    """The Hessian's inverse pieces and the Gaussian moments (derive.gaussian)."""
    lam, Lh = gaussian.hadamard_covariance()
    S_w, rhs_w = gaussian.woodbury_system()
    S_h, rhs_h, Z = gaussian.hessian_system()
    arrays = ("W", "Lh", "Li", "b", "mu", "R", "Rhs", "w")
    return [
        _spec("hadamard_inverses", ["lam"],
              "(Lh, Li): Lh = Cov0 scale of the Hadamard part, Cov0(X_ij, X_kl) = Lh_ij (d_ik d_jl + "
              "d_il d_jk), and Li, the inverse of Z -> lam o Z (docs/theory.md §2c, derive.gaussian).",
              [f"Lh = {code(Lh)}", f"Li = {code(1 / lam)}"], "Lh, Li"),
        _spec("woodbury_system", ["Lh", "b", "mu", "k"],
              "(S, rhs): the Woodbury core R = (M^-1 + Omega)^-1 of the low-rank term solves S R = rhs "
              "(M = k diag(mu), Omega = Cov0(Xb, Xb)); no 1/mu (derive.gaussian).",
              ["n = mu.shape[0]", *_index({"S": (S_w, ("p", "q")), "rhs": (rhs_w, ("p", "q"))}, arrays)],
              "S, rhs"),
        _spec("gaussian_moment", ["W", "Lh", "b", "R"],
              "E[X W X] for X ~ N(0, H^-1): the Hadamard part minus the Woodbury correction "
              "(derive.gaussian.moment, pairwise O(n^3) products).",
              ["n = W.shape[0]", *_index({"E": (gaussian.moment(), ("i", "l"))}, arrays)], "E"),
        _spec("hessian_system", ["Rhs", "Li", "b", "mu", "h"],
              "(S, rhs) with S w = rhs for H[Z] = Rhs, H[Z] = lam o Z + h (b w^T + w b^T), "
              "w = diag(mu) Z b (derive.gaussian.hessian_system).",
              ["n = mu.shape[0]", *_index({"S": (S_h, ("i", "q")), "rhs": (rhs_h, ("i",))}, arrays)],
              "S, rhs"),
        _spec("hessian_field", ["Rhs", "Li", "b", "w", "h"],
              "Z = (Rhs - h (b w^T + w b^T)) o Li: the solution of H[Z] = Rhs given w.",
              ["n = b.shape[0]", *_index({"Z": (Z, ("i", "j"))}, arrays)], "Z"),
    ]


def basis_specs():
    """Basis quantities from the singular values of Phi F^1/2 (derive.kernelfield.basis_forms) and
    the outputs from the readout (derive.kernelfield.outputs)."""
    f = kf.basis_forms()
    lines = [f"d = {code(f['d'])}", f"mu = {code(f['mu'].subs(f['d'], sp.Symbol('d')))}",
             f"b = {code(f['b'].subs(f['d'], sp.Symbol('d')))}",
             f"yAy = numpy.sum({code(f['yAy'].subs(f['d'], sp.Symbol('d')))}) + {code(f['yAy_null'].subs(kf.yu ** 2, sp.Symbol('y_null2')))}",
             f"logdet_A = numpy.sum(numpy.log(d)) + n_null * {code(f['logdet_A_null'])}"]
    out = [_spec("basis_forms", ["sig", "yU", "y_null2", "n_null", "kappa", "g_v"],
                 "(mu, b, y^T A^-1 y, logdet A) from the nonzero singular values sig of Phi F^1/2, "
                 "y's components yU along them, the squared norm y_null2 of the rest of y and the "
                 "number n_null of null directions of C (docs/theory.md §2c).", lines, "mu, b, yAy, logdet_A")]
    out.append(_spec("test_feature_variance", ["kstar", "Kinv_kstar", "kss"],
                     "s2 = k** - k*^T K^-1 k* per test point: a test feature's variance given the training ones, "
                     "which the kernel field does not fix (docs/theory.md §2c).",
                     ["P = kstar.shape[0]", f"s2 = {numpy_code(kf.test_feature_variance())}"], "s2"))
    for inst, (train, test) in kf.outputs().items():
        args = ["beta", "Kinv_beta", "kstar"] if inst == "kernel" else ["X", "X_test", "beta"]
        out.append(KernelSpec(name=f"outputs_{inst}", family="numpy_function", args=args,
                              doc=f"(train mean, test mean) from the readout beta, {inst} field (docs/theory.md §2c).",
                              node=[Statement("train", train), Statement("test", test)], returns="train, test"))
    return out


def modules():
    return {
        "kernel_field": (
            "kernel_field: one loop of the Wishart field (kernel or weight space)",
            "The Wishart field's action and its first-order loop term for linear networks (docs/theory.md "
            "§2c), in the basis T^T F^-1 T = I, T^T Phi^T A^-1 Phi T = diag(mu), b = T^T Phi^T A^-1 y. "
            "NumPy functions; every product is O(n^3) at most.",
            "derive.kernelfield.structured + derive.loops.expand_components",
            1,
            0,
            specs(),
        )
    }
