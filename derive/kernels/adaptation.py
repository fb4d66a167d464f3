"""Kernel specifications for kernel adaptation (docs/theory.md §2b): generated/adaptive_linear.py,
the per-eigenvalue maps of the linear-phi saddle (orders 0 and 1): b = h^-1(rho), f = A-eigenvalue,
df/drho; the rank-one coefficient sigma; the field step Ct(A, alpha) and the predictions at the
saddle (NumPy matrix functions)."""
from __future__ import annotations

import sympy as sp

from .. import adaptation_basis as basis, adaptive, indices
from ..emit import KernelSpec, Statement, code

_ARRAYS = {k: k for k in ("inv_lam", "a", "f", "y", "Phi", "khat", "B", "E", "kss", "sqrt_lam")}


def _lines(name, args, doc, targets, returns, before=()):
    lines = list(before) + indices.numpy_lines(targets, _ARRAYS, code)
    return KernelSpec(name=name, family="numpy_lines", args=args, doc=doc, extra={"lines": lines},
                      returns=returns)


def structured_specs():
    """The eigenbasis forms of derive.adaptation_basis (structured Newton solver, test quantities,
    hidden weights)."""
    lam, y_r, a0 = basis.nngp_start()
    Cs, css = basis.test_forms()
    M, v = basis.weight_forms()
    return [
        _lines("saddle_field", ["inv_lam", "a", "sigma"],
               "R = diag(1/lam) - sigma a a^T: the field whose matrix function is the adapted kernel "
               "(docs/theory.md §2b, derive.adaptation_basis).",
               {"R": (basis.simplify(basis.field(), ("i", "j")), ("i", "j"))}, "R"),
        _lines("saddle_residual", ["a", "f", "y"],
               "F = a - f o y: the fixed-point residual in the eigenbasis of R.",
               {"F": (basis.simplify(basis.residual(), ("i",)), ("i",))}, "F"),
        _lines("newton_matrix", ["Phi", "a", "y", "sigma"],
               "I - J, J the Daleckii-Krein Jacobian of a -> f(R(a)) y in the eigenbasis of R "
               "(Phi: divided differences of f over R's eigenvalues).",
               {"NM": (basis.newton_matrix(), ("i", "q"))}, "NM", ["n = a.shape[0]"]),
        KernelSpec(name="nngp_start", family="numpy_function", args=["lam", "y_r", "kappa", "g_v"],
                   doc="a = U_r^T alpha at C = K, alpha = (g_v K + kappa)^-1 y: the NNGP start (docs/theory.md §5).",
                   node=[Statement("a0", a0)], returns="a0"),
        KernelSpec(name="precision_shift", family="numpy_function", args=["Ct"],
                   doc="E with C^-1 = K^-1 + E (linear phi): E = s Ct, s derived from the saddle's C(Ct).",
                   node=[Statement("E", adaptive.precision_shift() * sp.MatrixSymbol("Ct", adaptive.P, adaptive.P))],
                   returns="E"),
        _lines("test_forms", ["B", "E", "khat", "kss"],
               "(C*, c**) in the eigenbasis of K: C* = (I - B E) khat, c** = k** + diag(khat^T (E B E - E) "
               "khat), the structured forms of (I - 2 K Ct)^-1 k* and x*^T S x* (docs/theory.md §2b).",
               {"Cs": (Cs, ("i", "t")), "css": (css, ("t",))}, "Cs, css"),
        _lines("weight_forms", ["lam", "E", "a"],
               "(M, v): S = (g_w/D) M^-1 on the range of X^T, M = I + sqrt(Lam) E sqrt(Lam), and the "
               "learned direction X^T alpha = V v, v = sqrt(lam) o a (docs/theory.md §2b, §4).",
               {"M": (M, ("i", "j")), "v": (v, ("i",))}, "M, v", ["n = lam.shape[0]", "sqrt_lam = numpy.sqrt(lam)"]),
    ]


def adapted_spectrum_spec(order: int) -> KernelSpec:
    red = adaptive.reduction(order)
    b = adaptive.b
    node = [
        Statement("b_out[j]", b),
        Statement("f_out[j]", red.f),
        Statement("df_out[j]", sp.diff(red.f, b) / sp.diff(red.h, b)),
    ]
    return KernelSpec(
        name=f"adapted_spectrum_o{order}",
        family="row_map",
        args=["rho_modes", "N", "kappa", "g_v", "b_out", "f_out", "df_out"],
        doc=(
            "Kernel-adaptation saddle, order %d (docs/theory.md §2b), on the eigenvalues rho of "
            "R = Lambda^-1 - sigma a a^T: C-eigenvalue b = h^-1(rho) with h(b) = %s, "
            "A-eigenvalue f = 1/(g_v b + kappa), and df/drho = f'(b)/h'(b) (derive.adaptive)."
            % (order, sp.sstr(red.h))
        ),
        node=node,
        prelude=[("rho", "rho_modes[j]"), ("b", red.b_of_rho)],
        rows="rho_modes.shape[0]",
    )


def rank_one_spec(order: int) -> KernelSpec:
    red = adaptive.reduction(order)
    return KernelSpec(
        name=f"rank_one_coefficient_o{order}",
        family="scalar",
        args=["N", "chi", "g_v"],
        doc="sigma in R = Lambda^-1 - sigma a a^T: the directional (alpha alpha^T) weight of -2 Ct.",
        node=[Statement("sigma", red.sigma)],
        returns="sigma",
    )


def conjugate_field_spec(order: int) -> KernelSpec:
    return KernelSpec(
        name=f"conjugate_field_o{order}",
        family="numpy_function",
        args=["A", "alpha", "N", "chi", "g_v"],
        doc="Ct at the saddle, order %d (docs/theory.md §2b): derived dS/dC = 0 solved for Ct." % order,
        node=[Statement("Ct", adaptive.conjugate_field(order))],
        returns="Ct",
    )


def predictions_spec() -> KernelSpec:
    preds = adaptive.predictions()
    doc = ("Predictions at the kernel-adaptation saddle (docs/theory.md §2b): train mean, test mean, test variance; "
           "column vectors; valid in any orthonormal basis of a subspace holding the ranges of C and C*.")
    node = [Statement("P", sp.Symbol("C.shape[0]"))] + [Statement(k, v) for k, v in preds.items()]
    return KernelSpec(name="predictions", family="numpy_function", args=["C", "Cs", "css", "A", "alpha", "g_v", "chi"],
                      doc=doc, node=node, returns=", ".join(preds))


def modules():
    out = {}
    specs = []
    for order in adaptive.ORDERS:
        specs += [adapted_spectrum_spec(order), rank_one_spec(order), conjugate_field_spec(order)]
    specs.append(predictions_spec())
    specs += structured_specs()
    out["adaptive_linear"] = (
        "adaptive_linear: kernel-adaptation saddle of a linear network",
        "Kernel adaptation for linear networks (docs/theory.md §2b), orders 0 and 1: per-eigenvalue saddle "
        "maps, the conjugate field and the predictions at the saddle.",
        "derive.adaptive.saddle + derive.adaptive.reduction + derive.adaptive.predictions",
        1,
        0,
        specs,
    )
    return out
