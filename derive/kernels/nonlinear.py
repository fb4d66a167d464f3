"""Kernel specifications for kernel adaptation with any activation (docs/theory.md §2b, §6):
generated/adaptive_nonlinear.py -- the fit operator g_v C + kappa whose inverse is A, and the
moments of the adapted single-neuron law from draws (derive.neuron): empirical under q, and the
first-order cumulant expansion around the prior."""
from __future__ import annotations

import sympy as sp

from .. import adaptive, deep_chain, indices, neuron
from ..emit import KernelSpec, Statement, code, numpy_code

_ARRAYS = {k: k for k in ("F", "Ft", "Ct", "dq", "w")}


def _lines(targets, **renamed):
    return indices.numpy_lines(targets, {**_ARRAYS, **renamed}, code)


def _tilt_line(field):
    """q = phi^T field phi per draw (rows of F): deep_chain's tilt, printed as one row_quadratic."""
    F = sp.MatrixSymbol("F", deep_chain.Phi.shape[0], deep_chain.n)
    T = sp.MatrixSymbol(field, deep_chain.n, deep_chain.n)
    return f"q = {numpy_code(deep_chain.tilt().xreplace({deep_chain.Phi: F, deep_chain.Ct: T}))}[:, 0]"


def _tilt_tangent_code():
    F = sp.MatrixSymbol("F", deep_chain.Phi.shape[0], deep_chain.n)
    return numpy_code(neuron.tilt_tangent(F, sp.MatrixSymbol("c", deep_chain.Phi.shape[0], 1)))


def _weighted_moments_lines():
    m, n, k = (sp.Symbol(s, integer=True, positive=True) for s in ("m", "n", "t"))
    F, Fs, Fv = sp.MatrixSymbol("F", m, n), sp.MatrixSymbol("Fs", m, k), sp.MatrixSymbol("Fv", m, k)
    C, Cs, css = neuron.weighted_moments(F, Fs, Fv, sp.MatrixSymbol("w", m, 1))
    return ["w = numpy.asarray(w, dtype=numpy.float64).reshape(-1, 1)", "t = Fs.shape[1]",
            f"C = {numpy_code(C)}", f"Cs = {numpy_code(Cs)}", f"css = ({numpy_code(css)})[:, 0]"]


def specs():
    C1, Cs1, css1 = neuron.first_order_moments()
    C, Cs, css = neuron.empirical_moments()
    zeroth = {k: sp.Symbol(k) for k in ("Kphi", "kstar_phi", "kss_phi", "C1", "Cs1", "css1")}
    return [
        KernelSpec(name="fit_operator", family="numpy_function", args=["C", "kappa", "g_v"],
                   doc="g_v C + kappa I, whose inverse is A (docs/theory.md §2b); alpha = A y.",
                   node=[Statement("P", sp.Symbol("C.shape[0]")), Statement("M", adaptive.fit_operator())],
                   returns="M"),
        KernelSpec(name="empirical_moments", family="numpy_lines", args=["F", "Ft"],
                   doc="(C, C*, c**) = draw means of phi phi^T, phi phi*^T, phi*^2 from the train "
                       "features F and test features Ft of draws of q (rows; docs/theory.md §2b).",
                   extra={"lines": ["M = F.shape[0]", *_lines({"C": (C, ("a", "b")), "Cs": (Cs, ("a", "t")),
                                                               "css": (css, ("t",))})]},
                   returns="C, Cs, css"),
        KernelSpec(name="weighted_moments", family="numpy_lines", args=["F", "Fs", "Fv", "w"],
                   doc="(C, C*, c**) = weighted draw means of phi phi^T, phi phi*^T, phi*^2 from the train features "
                       "F, test features Fs and Fv (rows) of draws with weights w summing to one, without a "
                       "weighted copy of F (derive.neuron.weighted_moments; docs/theory.md §2b).",
                   extra={"lines": _weighted_moments_lines()}, returns="C, Cs, css"),
        KernelSpec(name="cumulant_moments", family="numpy_lines",
                   args=["F", "Ft", "Ct", "Kphi", "kstar_phi", "kss_phi"],
                   doc="(C, C*, c**) to first order in Ct (docs/theory.md §6): the exact NNGP kernels plus the "
                       "centred covariance of phi phi^T with the tilt q = phi^T Ct phi over prior draws "
                       "(derive.neuron).",
                   extra={"lines": ["M = F.shape[0]", _tilt_line("Ct"),
                                    "dq = q - numpy.mean(q)",
                                    *_lines({"C1": (C1, ("a", "b")), "Cs1": (Cs1, ("a", "t")),
                                             "css1": (css1, ("t",))}),
                                    f"C = {code(zeroth['Kphi'] + zeroth['C1'])}",
                                    f"Cs = {code(zeroth['kstar_phi'] + zeroth['Cs1'])}",
                                    f"css = {code(zeroth['kss_phi'] + zeroth['css1'])}"]},
                   returns="C, Cs, css"),
        KernelSpec(name="tilt_tangent", family="numpy_lines", args=["F", "w", "dCt"],
                   doc="d E_w[phi phi^T] along the field dCt for draws (rows of F) with weights w summing to one "
                       "and proportional to exp(phi^T Ct phi): the weighted covariance of phi phi^T with "
                       "q = phi^T dCt phi (docs/theory.md §2b; derive.neuron.weighted_centred_form).",
                   extra={"lines": [_tilt_line("dCt"),
                                    "dq = q - w @ q",
                                    "c = w * dq", f"dC = {_tilt_tangent_code()}"]},
                   returns="dC"),
    ]


def modules():
    return {"adaptive_nonlinear": (
        "adaptive_nonlinear: kernel adaptation for any activation",
        "Kernel adaptation for any activation (docs/theory.md §2b, §6): the fit operator and the moments of "
        "the adapted single-neuron law from draws, empirical or to first order in Ct.",
        "derive.adaptive.fit_operator + derive.neuron", None, 0, specs())}
