"""Kernel specifications for kernel adaptation (docs/theory.md §2b): generated/adaptive_linear.py,
the per-eigenvalue maps of the linear-phi saddle (orders 0 and 1): b = h^-1(rho), f = A-eigenvalue,
df/drho; the rank-one coefficient sigma; the field step Ct(A, alpha) and the predictions at the
saddle (NumPy matrix functions)."""
from __future__ import annotations

import sympy as sp

from .. import adaptive
from ..emit import KernelSpec, Statement


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
            "Kernel-adaptation saddle, order %d (THEORY §2b), on the eigenvalues rho of "
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
        doc="Ct at the saddle, order %d (THEORY §2b): derived dS/dC = 0 solved for Ct." % order,
        node=[Statement("Ct", adaptive.conjugate_field(order))],
        returns="Ct",
    )


def predictions_spec() -> KernelSpec:
    preds = adaptive.predictions()
    node = [Statement(k, v) for k, v in preds.items()]
    return KernelSpec(
        name="predictions",
        family="numpy_function",
        args=["C", "Cs", "css", "A", "alpha", "g_v", "chi"],
        doc=(
            "Predictions at the kernel-adaptation saddle (THEORY §2b): train mean, test mean, test "
            "variance; column vectors; valid in any orthonormal basis of a subspace holding the "
            "ranges of C and C*."
        ),
        node=[Statement("P", sp.Symbol("C.shape[0]"))] + node,
        returns=", ".join(preds),
    )


def modules():
    out = {}
    specs = []
    for order in adaptive.ORDERS:
        specs += [adapted_spectrum_spec(order), rank_one_spec(order), conjugate_field_spec(order)]
    specs.append(predictions_spec())
    out["adaptive_linear"] = (
        "adaptive_linear: kernel-adaptation saddle of a linear network",
        "Kernel adaptation for linear networks (THEORY §2b), orders 0 and 1: per-eigenvalue saddle "
        "maps, the conjugate field and the predictions at the saddle.",
        "derive.adaptive.saddle + derive.adaptive.reduction + derive.adaptive.predictions",
        1,
        0,
        specs,
    )
    return out
