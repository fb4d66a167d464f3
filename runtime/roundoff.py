"""The round-off in the loop series' test variances, measured (docs/theory.md §2a, §3).

The variance given s, g_v s k** - (g_v s)^2 k*^T (g_v s K + kappa)^-1 k*, is a difference of terms ~ s k**: where
targets far above the prior's output scale make s large, or kappa makes the variance small, they cancel (a review:
y x 1e4 at kappa = 1e-6, loop test variances 25-50% off, converged). The posterior is symmetric under y -> y/c,
kappa -> kappa/c^2, g_v -> g_v/c^2 (outputs over c, variances over c^2); the series evaluated again in those units,
c not a power of 2 so that every rounding differs, measures what float64 kept. Only points whose terms exceed their
variance by a factor that could matter are probed, so that ordinary ladders pay nothing. The kernel field's one loop
(linear `adaptive --order 2`, docs/theory.md §2c) is probed the same way, its s read from its adapted kernel.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from msat import generated

from . import ladder, methods
from .numerics import observe
from .spectral import retarget, spectrum

#: eps times (terms / variance) above which a point is probed
PROBE_FROM = 1e-9
#: the units of the probe (y / PROBE)
PROBE = 3.0


def probed(p) -> bool:
    """Whether the method's results are probed here: the loop series and the kernel field (one layer, linear)."""
    return p.method == "loop" or (p.method == "adaptive" and p.order == 2 and p.activation == "linear")


def amplification(data, p, r, nngp_top=None) -> float:
    """s g_v max k** / min v* (s^2 for the loop from order 1): how much larger than the smallest test variance its
    terms are (k** of the first layer carried through the upper layers' g_w, linear networks); s the loop's s_mean,
    or where a result has none (the kernel field) its adapted kernel's largest eigenvalue over the NNGP's,
    `nngp_top` (the train means' effective rescaling cannot tell s past ~1e5: a fit to m(s) - y ~ 1/s)."""
    if not r.has_values or not np.size(r.test_var) or (r.s_mean is None and not nngp_top):
        return 0.0
    s = r.s_mean if r.s_mean is not None else r.extra["observables"]["kernel_top_eigenvalues"][0] / nngp_top
    mod = generated.nngp_kernels()
    kss = mod.input_kernels(data.X[:0], data.X_test, p.g_ws[0])[2]  # k** alone: no P x P kernel
    for g in p.g_ws[1:]:
        kss = mod.layer_preactivations(kss, g)
    # the loop's terms from order 1 on grow like s^2 (numerics.truncation.invalid): at kappa = 1e-3, y x 1e4 the
    # probe measured 2.8e-4 where eps s^2 g_v k** / v* reads 1.8e-4, and y x 1e6 was 2.3 times off
    power = 2 if p.method == "loop" and p.order >= 1 else 1
    return abs(s) ** power * p.g_v * float(np.max(kss)) / max(float(np.min(np.abs(r.test_var))), 1e-300)


def probe(data, p, results: list, spec=None) -> list:
    """`results` of the loop series or the kernel field, each point whose terms could cancel probed and marked by
    the share its test variances moved in the other units (numerics.observe.mark_probed). Where the other units
    fail too (an outside check: the kernel field at y x 1e15, 42% off, converged), eps times the amplification
    stands in for the share (it read 4 to 10 times the error there). `spec`: the solver's spectrum of data, whose
    factorisation the other units reuse (a second SVD of X was 0.6 s of a 1.6 s ladder at P = 2000)."""
    eps = np.finfo(np.float64).eps
    if p.method == "loop":
        top = None
    else:  # K's eigenvalues depend on X alone: the solver's are those of this spectrum
        top = float((spectrum(data.X, data.y, None, p.g_ws[0], "linear") if spec is None else spec).lam.max())
    amps = [eps * amplification(data, p, r, top) if r.converged else 0.0 for r in results]
    todo = [(r, a) for r, a in zip(results, amps) if a > PROBE_FROM]
    if not todo:
        return results
    scaled = dataclasses.replace(data, y=data.y / PROBE)
    again = ladder.solve(methods.solver(scaled, p.replace(kappa=p.kappa / PROBE**2, g_v=p.g_v / PROBE**2),
                                        spec=None if spec is None else retarget(spec, scaled.y)),
                         [r.chi for r, _ in todo])
    for k, (r, a) in enumerate(todo):  # a ladder stops at its first failure: the estimate stands in after it too
        if k < len(again) and again[k].has_values:
            lost, how = observe.variance_shift(r.test_var, again[k].test_var * PROBE**2), "measured by solving again"
        else:
            lost, how = a, "estimated from float64's precision of their terms: solving again failed"
        observe.mark_probed(r, lost, f"the test variances are lost to round-off in part ({lost:.2g} of them, {how} "
                            "in other units): targets far above the prior's output scale, or a small kappa, make "
                            f"their terms cancel; for large targets {observe.RESCALE}; for a small kappa, or either, "
                            "--method exact")
    return results
