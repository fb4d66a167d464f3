"""Moments of the adapted single-neuron law (docs/theory.md §2b, §6) from draws of w.

The saddle equation C = E_q[phi phi^T] (with C* = E_q[phi(Xw) phi(X*w)^T], c** = E_q[phi(X*w)^2])
is estimated from M draws: rows F (train features phi(X w_m)) and Ft (test features) of the draws
give the empirical moments (``empirical_moments``). For small Ct the tilted law is expanded to
first order around the prior (the cumulant expansion): with draws from the prior and the tilt
q_m = phi_m^T Ct phi_m, the eps-tilted mean of g, sum_m g_m e^(eps q_m) / sum_m e^(eps q_m), has the
eps-derivative at 0 derived here (``first_order_tilt``), which equals the centred covariance
(1/M) sum_m g_m (q_m - qbar) (checked symbolically, ``centred_form``); that form is the one emitted,
because it avoids the cancellation of E[g q] - E[g] E[q]. The zeroth order is the exact NNGP
kernel, so C ~ K^phi + (1/M) F^T diag(q - qbar) F.
"""
from __future__ import annotations

import sympy as sp

from . import matcalc
from .indices import A, mul, scale, simplify

eps = sp.Symbol("eps", real=True)
M_draws = sp.Symbol("M", positive=True, integer=True)


def first_order_tilt(M: int):
    """d/d eps of the eps-tilted mean of g at eps = 0, for M explicit draws (SymPy)."""
    g = sp.symbols(f"g0:{M}", real=True)
    q = sp.symbols(f"q0:{M}", real=True)
    mean = sum(gi * sp.exp(eps * qi) for gi, qi in zip(g, q)) / sum(sp.exp(eps * qi) for qi in q)
    return sp.diff(mean, eps).subs(eps, 0), g, q


def centred_form(M: int):
    """(1/M) sum_m g_m (q_m - qbar), the form emitted; equal to first_order_tilt(M)."""
    d, g, q = first_order_tilt(M)
    qbar = sum(q) / M
    centred = sum(gi * (qi - qbar) for gi, qi in zip(g, q)) / M
    if sp.simplify(d - centred) != 0:
        raise ValueError("the first-order tilt is not the centred covariance")
    return centred


def weighted_centred_form(M: int):
    """The tilt's derivative of a weighted mean (docs/theory.md §2b): for weights w_m summing to one,
    d/d eps of sum_m w_m g_m e^(eps q_m) / sum_m w_m e^(eps q_m) at eps = 0 is
    sum_m w_m g_m (q_m - qbar_w), qbar_w = sum_n w_n q_n (checked here for M explicit draws). With
    q = phi^T dCt phi this is the derivative of E_q[phi phi^T] along the field dCt, the Jacobian of
    the single-neuron saddle map solved on reweighted draws (numerics.reweighted_saddle)."""
    g = sp.symbols(f"g0:{M}", real=True)
    q = sp.symbols(f"q0:{M}", real=True)
    w = list(sp.symbols(f"w0:{M - 1}", positive=True))
    w.append(1 - sum(w))
    mean = sum(wi * gi * sp.exp(eps * qi) for wi, gi, qi in zip(w, g, q)) / sum(
        wi * sp.exp(eps * qi) for wi, qi in zip(w, q))
    d = sp.diff(mean, eps).subs(eps, 0)
    qbar = sum(wi * qi for wi, qi in zip(w, q))
    centred = sum(wi * gi * (qi - qbar) for wi, gi, qi in zip(w, g, q))
    if sp.simplify(d - centred) != 0:
        raise ValueError("the tilt's derivative of a weighted mean is not the weighted centred covariance")
    return centred


def tilt_tangent(F, c):
    """dC_ab = sum_m F_ma c_m F_mb, c_m = w_m dq_m with dq = q - qbar_w (weighted_centred_form, with
    g = F_a F_b): the weighted Gram matrix F^T diag(c) F of the draws' features F (matrix symbols)."""
    weighted_centred_form(3)
    return matcalc.WeightedGram(F, c)


def weighted_moments(F, Fs, Fv, w):
    """(C, Cs, css) = sum_m w_m F_ma F_mb, F_ma Fs_mt, Fv_mt^2 for draws with weights w summing to one (matrix
    symbols; rows are draws): the saddle equation's moments under reweighted draws, C as the weighted Gram
    matrix F^T diag(w) F, with no weighted copy of the draws."""
    ones = sp.OneMatrix(1, Fs.shape[1])
    return (matcalc.WeightedGram(F, w), F.T * sp.HadamardProduct(Fs, w * ones),
            (w.T * sp.HadamardProduct(Fv, Fv)).T)


def first_order_moments():
    """(C1, Cs1, css1): (1/M) sum_m (q_m - qbar) times F_ma F_mb, F_ma Ft_mt and Ft_mt^2."""
    centred_form(3)  # the derivation this rests on, checked for three explicit draws
    w = 1 / M_draws
    C1 = scale(w, mul(A("F", "m", "a"), A("dq", "m"), A("F", "m", "b")))
    Cs1 = scale(w, mul(A("F", "m", "a"), A("dq", "m"), A("Ft", "m", "t")))
    css1 = scale(w, mul(A("Ft", "m", "t"), A("dq", "m"), A("Ft", "m", "t")))
    return simplify(C1, ("a", "b")), simplify(Cs1, ("a", "t")), simplify(css1, ("t",))


def empirical_moments():
    """(C, Cs, css): (1/M) sum_m F_ma F_mb, F_ma Ft_mt, Ft_mt^2 (the saddle equation's moments)."""
    w = 1 / M_draws
    C = scale(w, mul(A("F", "m", "a"), A("F", "m", "b")))
    Cs = scale(w, mul(A("F", "m", "a"), A("Ft", "m", "t")))
    css = scale(w, mul(A("Ft", "m", "t"), A("Ft", "m", "t")))
    return simplify(C, ("a", "b")), simplify(Cs, ("a", "t")), simplify(css, ("t",))
