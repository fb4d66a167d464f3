"""How far a loop series' truncation lies from its sum (docs/theory.md §3): the size of the next term.

The loop series is asymptotic in 1/N with coefficients that grow with P; its order-(L+1) term of the test means
tracks the error of the order-L truncation against the exact integral (one to three layers, Ising and teacher
tasks, P/N = 0.1..4, chi = 1 and N, kappa 0.05 and 0.5: 0.4 to 1.1 of the error wherever that exceeds 1e-3). The
test variances' term is judged beside it (their truncation can be further off than the means'), s_mean's where
there are no test points. Where order L + 1 is not generated, the order-L term stands in: the error of order
L - 1, mostly an overestimate. A result no posterior can have (s <= 0, a negative variance) is no answer:
`invalid` says whether the expansion in 1/N or float64's rounding of the series' terms is why.
Kernel adaptation's orders 0 and 1 near standard scaling are no better than the NNGP at any width
(`standard_scaling_note`).
"""
from __future__ import annotations

import numpy as np

from msat import generated

from .observe import RESCALE

#: a term above this fraction of the largest test mean or variance carries a warning (the next term reads 0.4-1.1
#: of the error where that exceeds 1e-3: a review's 640-point scan)
WARN = 0.05


def next_order(order: int):
    """L + 1 if its loop modules are generated, else None."""
    return order + 1 if order + 1 <= generated.MAX_ORDER else None


#: the outputs whose next term is judged: the test means and variances, or where there are no test points (or
#: they vanish) the mean rescaling s
JUDGED = ("test_mean", "test_var", "s_mean")


def relative_terms(terms: dict, sums: dict) -> np.ndarray:
    """max over outputs of |term| / max |sum| per ladder point: the coefficients `terms` of one order (J, ...) of
    the test means and variances against their truncated sums (J, ...), or of s_mean where there are no test
    points or their sums vanish."""
    out = None
    for k in ("test_mean", "test_var"):
        t, v = np.abs(terms[k]).reshape(len(terms[k]), -1), np.abs(sums[k]).reshape(len(sums[k]), -1)
        scale = np.max(v, axis=1, initial=0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(scale > 0, np.max(t, axis=1, initial=0.0) / np.where(scale > 0, scale, 1.0), np.nan)
        out = r if out is None else np.fmax(out, r)
    s = np.abs(np.asarray(terms["s_mean"], dtype=float)) / np.abs(np.asarray(sums["s_mean"], dtype=float))
    return np.where(np.isnan(out), s, out)


def warning(ratio: float, order: int, P: int, N: int, own: bool, what: str):
    """The line a point carries where its series' next (or, `own`, last) term is large, else None; `what`: the
    outputs it was measured on."""
    if not ratio > WARN:
        return None
    if own:
        return (f"the loop series' last term (order {order}) is {ratio:.0%} of the {what}: the series converges "
                f"slowly here (P/N = {P / N:.2g}) and order {order}'s truncation error can be a good part of that; "
                "--method exact is the exact answer")
    return (f"the loop series' next term (order {order + 1}) is {ratio:.0%} of the {what}: order {order}'s "
            f"truncation error is about that large here (P/N = {P / N:.2g}); --method exact is the exact answer "
            "(a higher --order where its series holds)")


def invalid(solver, result):
    """The loop solvers' `invalid` (runtime.ladder): why a truncated series' result cannot be a posterior's (s <= 0
    or a negative variance: N = 2 at P = 12 gave s_mean = -0.91, far outside its expansion in 1/N), or None."""
    impossible, sm, sv = [], result.s_mean, result.s_var
    if sm is not None and sm <= 0:
        impossible.append(f"s_mean = {sm:.3g} <= 0")
    if sv is not None and sv < 0:
        impossible.append(f"s_var = {sv:.3g} < 0")
    v, params = np.asarray(result.test_var), solver.params
    if v.size and v.min() < -1e-9 * max(np.abs(v).max(), 1e-300):  # beyond round-off of a vanishing variance
        # the terms the series sums, ~ s g_v k** (s^2 g_v k** from order 1: y x 1e9 gave variances of +-256 at
        # s = 9e8): a negative variance within a few thousand eps of them is their rounding (large targets, small
        # kappa: 1 to 5 eps measured), not 1/N (whose failures are 1e13 eps and more of them)
        terms = max(abs(sm or 0.0), 1.0) ** min(params.order + 1, 2) * params.g_v * float(np.max(solver.spec.kss))
        if not impossible and -v.min() < 1e-12 * terms:
            return (f"the loop series at order {params.order} gives a test variance {v.min():.3g} < 0: zero to "
                    f"float64's precision next to its terms (~{terms:.3g}), which targets far above the prior's output "
                    f"scale, or a small kappa, make cancel; for large targets {RESCALE}; for a small kappa, or either, "
                    "--method exact")
        impossible.append(f"a test variance {v.min():.3g} < 0")
    if not impossible:
        return None
    narrow = min(getattr(params, "widths", None) or (params.N,))  # the narrowest layer (an audit: widths 2, 100)
    return (f"the loop series at order {params.order} gives {', '.join(impossible)}: its expansion in 1/N does not "
            f"hold at N = {narrow} (P/N = {params.P / narrow:.2g}); --method exact is the exact answer")


#: what a linear network has instead near standard scaling
EXACT_REMEDY = "--method exact integrates the posterior, --method loop converges to it like N^-(L+1)"
#: order 0 or 1 at chi/N at most this is near standard scaling, where its error is comparable to the correction
STANDARD_CHI_OVER_N = 0.1


def standard_scaling_note(order, chi, N, remedy):
    """What order 0 or 1 near standard scaling is worth (docs/overview.md), or None: their error is comparable to
    the finite-width correction they compute at any width, since both fall like 1/N. Measured against the exact
    integral of linear networks (chi = 1, kappa = 0.1): 1.02, 1.31 and 1.6 times the correction at P = 4, 8 and
    20, the same at N = 40, 200 and 1000 and at depth 1 and 2; for erf at one layer (P = 8, N = 50 to 800, a
    review's sampler) 0.74-0.79 times it, further than the NNGP; for erf and relu at depth 2 (P = 4, N = 200,
    an outside audit's sampler) 1.2-1.4 times the NNGP's own error, 20-50 MCSE off. It was said only from
    P/N = 0.1."""
    if order not in (0, 1) or chi / N > STANDARD_CHI_OVER_N:
        return None
    return (f"near standard scaling (chi/N = {chi / N:.2g}) order {order}'s error is comparable to the "
            "finite-width correction it computes (0.7 to 1.6 times it, measured), at any width (both fall like 1/N), "
            f"and the NNGP may be closer to the networks; {remedy} (docs/overview.md)")
