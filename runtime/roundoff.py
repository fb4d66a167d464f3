"""The round-off in the loop series' test variances, measured (docs/theory.md §2a, §3).

The variance given s, g_v s k** - (g_v s)^2 k*^T (g_v s K + kappa)^-1 k*, is a difference of terms ~ s k**: where
targets far above the prior's output scale make s large, or kappa makes the variance small, they cancel (a review:
y x 1e4 at kappa = 1e-6, loop test variances 25-50% off, converged). The posterior is symmetric under y -> y/c,
kappa -> kappa/c^2, g_v -> g_v/c^2 (outputs over c, variances over c^2); the series evaluated again in those units,
c not a power of 2 so that every rounding differs, measures what float64 kept. Only points whose terms exceed their
variance by a factor that could matter are probed, so that ordinary ladders pay nothing.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from msat import generated

from . import ladder, methods
from .numerics import observe

#: eps times (terms / variance) above which a point is probed
PROBE_FROM = 1e-9
#: the units of the probe (y / PROBE)
PROBE = 3.0


def amplification(data, p, r) -> float:
    """s g_v max k** / min v*: how much larger than the smallest test variance its terms are (k** of the first
    layer carried through the upper layers' g_w, linear networks)."""
    if not r.has_values or r.s_mean is None or not np.size(r.test_var):
        return 0.0
    mod = generated.nngp_kernels()
    kss = mod.input_kernels(data.X[:0], data.X_test, p.g_ws[0])[2]  # k** alone: no P x P kernel
    for g in p.g_ws[1:]:
        kss = mod.layer_preactivations(kss, g)
    return abs(r.s_mean) * p.g_v * float(np.max(kss)) / max(float(np.min(np.abs(r.test_var))), 1e-300)


def probe_loop(data, p, results: list) -> list:
    """`results` of the loop series, each point whose terms could cancel probed and marked by the share its test
    variances moved in the other units (numerics.observe.mark_probed)."""
    eps = np.finfo(np.float64).eps
    todo = [r for r in results if r.converged and eps * amplification(data, p, r) > PROBE_FROM]
    if not todo:
        return results
    scaled = dataclasses.replace(data, y=data.y / PROBE)
    again = ladder.solve(methods.solver(scaled, p.replace(kappa=p.kappa / PROBE**2, g_v=p.g_v / PROBE**2)),
                         [r.chi for r in todo])
    for r, r2 in zip(todo, again):
        if not r2.has_values:
            continue
        lost = observe.variance_shift(r.test_var, r2.test_var * PROBE**2)
        observe.mark_probed(r, lost, f"the test variances are lost to round-off in part ({lost:.2g} of them, "
                            "measured by evaluating the series again in other units): targets far above the prior's "
                            "output scale, or a small kappa, make their terms cancel; set --g-v near the targets' "
                            "variance or rescale y, or use --method exact")
    return results
