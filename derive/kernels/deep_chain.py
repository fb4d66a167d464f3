"""Kernel specifications of the deep kernel-adaptation chain, linear networks (docs/theory.md §2d):
generated/adaptive_deep_linear.py, one layer's forward map, backward map and test forms (NumPy
matrix functions; derive.deep_chain), and their Jacobians as tangent maps. The top field and the predictions are adaptive_linear's."""
from __future__ import annotations

import sympy as sp

from .. import adaptive, deep_chain
from ..emit import KernelSpec, Statement


def specs():
    Cs, css = deep_chain.layer_test_forms()
    fit_dA, _ = deep_chain.fit_tangent()
    back_G, back_dCt = deep_chain.layer_backward_tangent()
    return [
        KernelSpec(name="layer_kernel", family="numpy_function", args=["Sigma", "T"],
                   doc="C_l = (I - 2 Sigma T)^-1 Sigma: the adapted kernel of one layer, Sigma = g_l C_{l-1}, "
                       "T = Ct_l (docs/theory.md §2d, derive.deep_chain).",
                   node=[Statement("n", sp.Symbol("Sigma.shape[0]")), Statement("C", deep_chain.layer_kernel())], returns="C"),
        KernelSpec(name="layer_backward", family="numpy_function", args=["Sigma", "T", "g_l", "N_l", "N_prev"],
                   doc="Ct_{l-1} = (N_l/N_{l-1}) g_l T (I - 2 Sigma T)^-1: the backward pass of the chain's "
                       "saddle (docs/theory.md §2d, derive.deep_chain).",
                   node=[Statement("n", sp.Symbol("Sigma.shape[0]")), Statement("Ct", deep_chain.layer_backward())],
                   returns="Ct"),
        KernelSpec(name="layer_test_forms", family="numpy_function", args=["Sigma", "T", "Ss", "sss"],
                   doc="(C_*, c_**) of one layer's tilted law from the preactivation blocks Sigma_* and "
                       "sigma_** (column) (docs/theory.md §2d, derive.deep_chain).",
                   node=[Statement("n", sp.Symbol("Sigma.shape[0]")), Statement("Cs", Cs), Statement("css", css)],
                   returns="Cs, css"),
        KernelSpec(name="layer_kernel_tangent", family="numpy_function", args=["Sigma", "T", "dSigma", "dT"],
                   doc="dC_l: the Jacobian of C_l = (I - 2 Sigma T)^-1 Sigma applied to (dSigma, dT) "
                       "(docs/theory.md §2d, derive.deep_chain).",
                   node=[Statement("n", sp.Symbol("Sigma.shape[0]")), Statement("C", deep_chain.layer_kernel()),
                         Statement("dC", deep_chain.layer_kernel_tangent())], returns="dC"),
        KernelSpec(name="layer_backward_tangent", family="numpy_function",
                   args=["Sigma", "T", "dSigma", "dT", "g_l", "N_l", "N_prev"],
                   doc="dCt_{l-1}: the Jacobian of the backward map (N_l/N_{l-1}) g_l T (I - 2 Sigma T)^-1 applied "
                       "to (dSigma, dT) (docs/theory.md §2d, derive.deep_chain).",
                   node=[Statement("n", sp.Symbol("Sigma.shape[0]")), Statement("G", back_G),
                         Statement("dCt", back_dCt)], returns="dCt"),
        KernelSpec(name="fit_tangent", family="numpy_function", args=["A", "y", "dC", "g_v"],
                   doc="(dA, dalpha) of A = (g_v C + kappa)^-1 and alpha = A y along dC (y a column) "
                       "(docs/theory.md §2d, derive.deep_chain).",
                   node=[Statement("dA", fit_dA), Statement("dalpha", deep_chain.dA * adaptive.y)],
                   returns="dA, dalpha"),
        *[KernelSpec(name=f"top_field_tangent_o{k}", family="numpy_function",
                     args=["A", "alpha", "dA", "dalpha", "N", "chi", "g_v"],
                     doc=f"dCt_L: the Jacobian of the top conjugate field, order {k}, applied to (dA, dalpha) "
                         "(docs/theory.md §2d, derive.deep_chain).",
                     node=[Statement("dCt", deep_chain.top_field_tangent(k))], returns="dCt") for k in (0, 1)],
        KernelSpec(name="stein_backward", family="numpy_function",
                   args=["Zp", "Phi", "dPhi", "Ct", "wts", "g_l", "N_l", "N_prev"],
                   doc="Ct_{l-1} = (N_l/N_{l-1}) g_l (1/2) sym E_q[(Sigma^+ h) grad G^T], grad G = 2 phi'(h) o "
                       "(Ct phi(h)): the backward pass for any activation from weighted draws of q_l (rows of "
                       "Zp = Sigma^+ h, Phi, dPhi; weights wts summing to 1) (docs/theory.md §2d, derive.deep_chain).",
                   node=[Statement("n", sp.Symbol("Ct.shape[0]")), Statement("Ct_prev", deep_chain.stein_backward())],
                   returns="Ct_prev"),
        KernelSpec(name="score_backward", family="numpy_function", args=["Zp", "wts", "wts0", "g_l", "N_l", "N_prev"],
                   doc="Ct_{l-1} = (N_l/N_{l-1}) g_l (1/2) sum_i (wts_i - wts0_i) (Sigma^+ h_i)(Sigma^+ h_i)^T: the "
                       "backward pass from the score of the Gaussian, no phi' (draws weighted to the tilted and the "
                       "untilted law) (docs/theory.md §2d, derive.deep_chain).",
                   node=[Statement("n", sp.Symbol("Zp.shape[1]")), Statement("Ct_prev", deep_chain.score_backward())],
                   returns="Ct_prev"),
        KernelSpec(name="proposal_log_ratio", family="numpy_function", args=["Z", "U"],
                   doc="ln N(z; 0, I) - ln N(z; 0, R R^T) per draw (rows of Z = U R^T), up to ln det R: the "
                       "importance weight of the untilted layer law (docs/theory.md §2d, derive.deep_chain).",
                   node=[Statement("n", sp.Symbol("Z.shape[1]")), Statement("base", deep_chain.proposal_log_ratio())],
                   returns="base"),
        KernelSpec(name="gaussian_log_density", family="numpy_function", args=["R", "logdet_F"],
                   doc="ln N(w; mu, (F F^T)^-1) per draw from its whitened rows R = (W - mu) F (logdet_F = ln det F): "
                       "the Gaussian base law that annealing starts from (docs/theory.md §6, derive.deep_chain).",
                   node=[Statement("m", sp.Symbol("R.shape[0]")), Statement("d", sp.Symbol("R.shape[1]")),
                         Statement("lg", deep_chain.gaussian_log_density())], returns="lg"),
        KernelSpec(name="gaussian_score", family="numpy_function", args=["R", "F"],
                   doc="Rows grad_w ln N(w; mu, (F F^T)^-1) = -F F^T (w - mu) from R = (W - mu) F "
                       "(docs/theory.md §6, derive.deep_chain).",
                   node=[Statement("sg", deep_chain.gaussian_score())], returns="sg"),
        KernelSpec(name="tilt_gradient", family="numpy_function", args=["Phi", "dPhi", "Ct"],
                   doc="Rows grad_h G = 2 phi'(h) o (Ct phi(h)) of the tilt G = phi(h)^T Ct phi(h) per draw (rows "
                       "of Phi = phi(h) and dPhi = phi'(h), Ct symmetric) (docs/theory.md §2d, §6, derive.deep_chain).",
                   node=[Statement("grad", deep_chain.tilt_gradient())], returns="grad"),
        KernelSpec(name="linearised_precision", family="numpy_function", args=["Xb", "Ct", "var_w"],
                   doc="Lambda = I - 2 var_w Xb^T Ct Xb: the precision, in prior-whitened weights, of the tilted "
                       "law of a unit whose features are linearised, phi(x_a.w) ~ beta_a x_a.w (rows of Xb: beta_a "
                       "x_a) (docs/theory.md §6, derive.deep_chain).",
                   node=[Statement("d", sp.Symbol("Xb.shape[1]")),
                         Statement("Lam", deep_chain.linearised_precision())], returns="Lam"),
        KernelSpec(name="tilt", family="numpy_function", args=["Phi", "Ct"],
                   doc="phi(h)^T Ct phi(h) per draw (rows of Phi): the log tilt of a layer's law "
                       "(docs/theory.md §2d, derive.deep_chain).",
                   node=[Statement("n", sp.Symbol("Phi.shape[1]")), Statement("G", deep_chain.tilt())],
                   returns="G"),
    ]


def modules():
    return {"adaptive_deep_linear": (
        "adaptive_deep_linear: one layer of the kernel-adaptation chain of a deep linear network",
        "Kernel adaptation at depth for linear networks (docs/theory.md §2d): the adapted kernel of one "
        "layer, the backward pass of the chain's saddle (closed form for linear phi, Stein form for any phi) and the "
        "test forms of the tilted law.",
        "derive.deep_chain",
        1,
        0,
        specs(),
    )}
