"""Kernel specifications of the hidden-weight posterior with the readout integrated out (docs/theory.md
§7): generated/marginal_posterior.py (derive.marginal), NumPy matrix functions."""
from __future__ import annotations

import sympy as sp

from .. import marginal as m
from ..emit import KernelSpec, Statement


def specs():
    var_a, s2 = m.variances()
    train, train_var, test, var = m.conditional_moments()
    return [
        KernelSpec(name="variances", family="numpy_function", args=["N", "chi", "kappa", "g_v"],
                   doc="(var_a, s2): the readout's prior variance and the noise variance, inverse curvatures "
                       "of the readout prior and the likelihood (docs/theory.md §7, derive.marginal).",
                   node=[Statement("var_a", var_a), Statement("s2", s2)], returns="var_a, s2"),
        KernelSpec(name="covariance", family="numpy_function", args=["Phi", "var_a", "s2"],
                   doc="Cov = var_a Phi Phi^T + s2 I: the covariance of y given the hidden weights "
                       "(docs/theory.md §7, derive.marginal).",
                   node=[Statement("P", sp.Symbol("Phi.shape[0]")), Statement("Cov", m.covariance())],
                   returns="Cov"),
        KernelSpec(name="log_density", family="numpy_function", args=["ya", "logdet", "ww", "D", "g_w"],
                   doc="log p(W | D) up to a constant from ya = y^T Cov^-1 y, logdet Cov and ww = |W|_F^2: the Gaussian "
                       "marginal of y plus the hidden-weight prior (docs/theory.md §7, derive.marginal).",
                   node=[Statement("value", m.log_marginal_value() + m.hidden_log_prior())], returns="value"),
        KernelSpec(name="feature_gradient", family="numpy_function", args=["a", "y", "Phi", "CiPhi", "var_a"],
                   doc="G = d log N(y; 0, Cov)/d Phi with a = Cov^-1 y, CiPhi = Cov^-1 Phi (SymPy gradient; "
                       "docs/theory.md §7, derive.marginal).",
                   node=[Statement("G", m.feature_gradient())], returns="G"),
        KernelSpec(name="weight_gradient", family="numpy_function", args=["G", "dPhi", "X", "W", "D", "g_w"],
                   doc="d log p(W | D)/dW = (G o phi'(X W^T))^T X + prior slope x W (docs/theory.md §7, "
                       "derive.marginal).",
                   node=[Statement("gW", m.weight_gradient())], returns="gW"),
        KernelSpec(name="conditional_moments", family="numpy_function",
                   args=["Phi", "Phis", "a", "CiPhi", "B", "CiB", "var_a", "s2"],
                   doc="E[f | W, y], Var[f | W, y], E[f* | W, y], Var[f* | W, y] (columns) for one draw of W, with "
                       "a = Cov^-1 y, CiPhi = Cov^-1 Phi, B = Phi* Phi^T, CiB = Cov^-1 B^T: Gaussian conditioning "
                       "(docs/theory.md §7, derive.marginal).",
                   node=[Statement("P", sp.Symbol("Phi.shape[0]")), Statement("N", sp.Symbol("Phi.shape[1]")),
                         Statement("train", train), Statement("train_var", train_var), Statement("test", test),
                         Statement("var", var)],
                   returns="train, train_var, test, var"),
    ]


def modules():
    return {"marginal_posterior": (
        "marginal_posterior: the hidden weights' posterior with the readout integrated out",
        "The posterior of the hidden weights with the readout integrated out exactly (docs/theory.md §7): the "
        "Gaussian marginal of y given W, its gradient, and each draw's conditional moments of the outputs "
        "(Rao-Blackwellisation).",
        "derive.marginal", None, 0, specs())}
