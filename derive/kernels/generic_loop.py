"""Kernel specifications of the kernel field's one loop for any activation (docs/theory.md §2e):
generated/loop_nonlinear.py (derive.generic_loop). Derivative tensors of the fit term and of the
outputs as einsum contractions (derive.einsum), the Gaussian cumulants of a linear network's tilted
law, and the loop correction in the field's coordinates."""
from __future__ import annotations

from .. import generic_loop as g
from ..einsum import einsum_lines
from ..emit import KernelSpec, Statement, numpy_code

_P = "P = A.shape[0]"


def specs():
    _, d2L, d3L = g.fit_derivatives()
    od = g.output_derivatives()
    vd = g.test_variance_derivatives()
    w2, w3 = g.gaussian_cumulants()
    return [
        KernelSpec(name="fit_hessian", family="numpy_lines", args=["A", "y", "chi", "g_v"],
                   doc="d2L[X, Y] as a tensor H[i, j, k, l] = d2L/dC_ij dC_kl (docs/theory.md §2e, "
                       "derive.generic_loop).",
                   extra={"lines": [_P, *einsum_lines("H", d2L, [g.X, g.Y])]}, returns="H"),
        KernelSpec(name="fit_third_contracted", family="numpy_lines", args=["A", "y", "Gcc", "chi", "g_v"],
                   doc="L'''[., G]: d3L/dC_ij dC_kl dC_mn summed against Gcc[k, l, m, n] (docs/theory.md §2e, "
                       "derive.generic_loop).",
                   extra={"lines": [_P, *einsum_lines("ell", d3L, [g.X, g.Y, g.Z], contract=[("Gcc", (g.Y, g.Z))])]},
                   returns="ell"),
        KernelSpec(name="train_mean_derivatives", family="numpy_lines", args=["A", "y", "C", "Gcc", "g_v"],
                   doc="(m1[mu, i, j], m2G[mu]) of the train means g_v C A y: first derivatives along C and the "
                       "second contracted with Gcc (docs/theory.md §2e, derive.generic_loop).",
                   extra={"lines": [_P, *einsum_lines("m1", od["train_c"], [g.X], selector=g.e),
                                    *einsum_lines("m2G", od["train_cc"], [g.X, g.Y], selector=g.e,
                                                  contract=[("Gcc", (g.X, g.Y))])]},
                   returns="m1, m2G"),
        KernelSpec(name="test_mean_derivatives", family="numpy_lines", args=["A", "y", "Cs", "Gcc", "Gcs", "g_v"],
                   doc="(m1c[t, i, j], m1s[t, i, s], m2G[t]) of the test means g_v Cs^T A y: first derivatives "
                       "along C and Cs, the second contracted with Gcc (C, C) and Gcs (C, Cs) (docs/theory.md "
                       "§2e, derive.generic_loop).",
                   extra={"lines": [_P, "Q = Cs.shape[1]",
                                    *einsum_lines("m1c", od["test_c"], [g.X], selector=g.es),
                                    *einsum_lines("m1s", od["test_s"], [g.Xs], selector=g.es),
                                    *einsum_lines("m2cc", od["test_cc"], [g.X, g.Y], selector=g.es,
                                                  contract=[("Gcc", (g.X, g.Y))]),
                                    *einsum_lines("m2cs", od["test_cs"], [g.X, g.Ys], selector=g.es,
                                                  contract=[("Gcs", (g.X, g.Ys))]),
                                    "m2G = m2cc + 2 * m2cs"]},
                   returns="m1c, m1s, m2G"),
        KernelSpec(name="test_variance_derivatives", family="numpy_lines",
                   args=["A", "Cs", "Gcc", "Gcs", "Gss", "chi", "g_v"],
                   doc="(v1c[t, i, j], v1s[t, i, s], v1d, v2G[t]) of the test variances v_t = (g_v/chi)(c**_t - g_v "
                       "Cs_t^T A Cs_t) given the field: first derivatives along C and Cs, the slope along its own "
                       "c**_t, and the second derivatives contracted with Gcc (C, C), Gcs (C, Cs) and Gss (Cs, Cs) "
                       "(docs/theory.md §2e, derive.generic_loop).",
                   extra={"lines": [_P, "Q = Cs.shape[1]",
                                    *einsum_lines("v1c", vd["c"], [g.X], selector=g.es),
                                    *einsum_lines("v1s", vd["s"], [g.Xs], selector=g.es),
                                    f"v1d = {numpy_code(vd['diag'])}",
                                    *einsum_lines("v2cc", vd["cc"], [g.X, g.Y], selector=g.es,
                                                  contract=[("Gcc", (g.X, g.Y))]),
                                    *einsum_lines("v2cs", vd["cs"], [g.X, g.Ys], selector=g.es,
                                                  contract=[("Gcs", (g.X, g.Ys))]),
                                    *einsum_lines("v2ss", vd["ss"], [g.Xs, g.Ys], selector=g.es,
                                                  contract=[("Gss", (g.Xs, g.Ys))]),
                                    "v2G = v2cc + 2 * v2cs + v2ss"]},
                   returns="v1c, v1s, v1d, v2G"),
        KernelSpec(name="output_spread", family="numpy_lines", args=["m1", "G"],
                   doc="<m^2> - <m>^2 per output to first order, m'^T G m' (twice the weight of m_ij G_ij in "
                       "the loop term): the outputs' variance over the field (docs/theory.md §2e, "
                       "derive.generic_loop).",
                   extra={"lines": ["d = m1.shape[0]", f"spread = {numpy_code(g.spread())}"]}, returns="spread"),
        KernelSpec(name="gaussian_w2", family="numpy_lines", args=["K"],
                   doc="W''[U, V] of h h^T under h ~ N(0, K) as a tensor W2[i, j, k, l] (derivatives in the "
                       "entries of T; docs/theory.md §2e, derive.generic_loop).",
                   extra={"lines": ["n = K.shape[0]", *einsum_lines("W2", w2, [g.U, g.V])]}, returns="W2"),
        KernelSpec(name="gaussian_w3", family="numpy_lines", args=["K", "Yh"],
                   doc="W'''[U, V, .] of h h^T under h ~ N(0, K) contracted with Yh[i, j, k, l] over (U, V) "
                       "(docs/theory.md §2e, derive.generic_loop).",
                   extra={"lines": ["n = K.shape[0]", *einsum_lines("w3", w3, [g.U, g.V, g.R],
                                                                      contract=[("Yh", (g.U, g.V))])]},
                   returns="w3"),
        KernelSpec(name="resolvent_operator", family="numpy_lines", args=["W2", "L2", "N"],
                   doc="N 1 - W'' L'' (or a square block of it): its inverse H gives the propagator "
                       "G = (N B - L2)^-1 = H W2 and G B = H without inverting W'' (docs/theory.md §2e, "
                       "derive.generic_loop).",
                   extra={"lines": ["d = W2.shape[0]", f"S = {numpy_code(g.resolvent_operator())}"]},
                   returns="S"),
        KernelSpec(name="cumulant_direction", family="numpy_function", args=["L2", "G", "N"],
                   doc="Y = N B G B - B = (L2 + L2 G L2) / N with G = (N B - L2)^-1 (on the training block, the "
                       "only one where Y is not zero): the one direction along which the loop needs the third "
                       "cumulant, N B W3[BGB] - B W3[B] = B W3[Y] (docs/theory.md §2e, derive.generic_loop).",
                   node=[Statement("Y", g.cumulant_direction())], returns="Y"),
        KernelSpec(name="loop_correction", family="numpy_function", args=["m1", "m2G", "G", "Hw3", "ell"],
                   doc="<m> - m per output (column): (1/2) tr(m'' G) + (1/2) (G m')^T (B W3[Y] + L3[., G]) with "
                       "Y = N B G B - B and W3[Y]_c = E[(u~^T Y u~) u~_c], written as (1/2) tr(m'' G) + (1/2) "
                       "(m'^T H W3[Y] + (G m')^T L3[., G]) with H = G B = (N 1 - W'' L'')^-1 (docs/theory.md "
                       "§2e, derive.generic_loop).",
                   node=[Statement("corr", g.loop_correction())], returns="corr"),
    ]


def modules():
    return {"loop_nonlinear": (
        "loop_nonlinear: the kernel field's one loop for any activation",
        "The kernel field's one loop for any activation (docs/theory.md §2e): derivative tensors of the fit "
        "term and the outputs, Gaussian cumulants for linear networks, and the loop correction in the field's "
        "coordinates from the tilted neuron law's cumulants.",
        "derive.generic_loop", 2, 0, specs())}
