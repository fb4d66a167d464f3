"""The generated deep-network loop modules (docs/theory.md §2d) against independent references:
the chain rule of O(e^T) through Stirling numbers of the second kind (SymPy's combinatorics), the
layer sums against the one-layer formula summed by hand in mpmath, the likelihood's T-derivatives
against mpmath's numerical differentiation, and the registry's error for a depth not emitted."""
import math

import mpmath
import numpy as np
import pytest
import sympy as sp

from msat import generated
from msat.derive import deep, model


@pytest.mark.parametrize("order", [1, 2, 3])
def test_linear_weights_are_the_stirling_chain_rule(order):
    _, ser = generated.deep(1, order)
    rng = np.random.default_rng(order)
    J, n = 3, ser.N_TABLE
    wT = rng.standard_normal((J, ser.N_TERMS, n))
    u = rng.uniform(0.3, 3.0, J)
    wu = np.empty_like(wT)
    ser.linear_weights(u, wT, wu)
    S2 = np.array([[float(sp.functions.combinatorial.numbers.stirling(a, b)) for b in range(n)] for a in range(n)])
    ref = np.einsum("jln,nk->jlk", wT, S2) * u[:, None, None] ** np.arange(n)
    np.testing.assert_allclose(wu, ref, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("variant", ["bare", "dressed"])
def test_layer_sums_equal_the_one_layer_formula_per_layer(variant):
    layers, ser = generated.deep(3, 2)
    widths = np.array([30.0, 300.0, 12.0])
    thetas = np.array([-4.0, 0.3, 2.5])
    T, dT = np.empty(3), np.empty(3)
    kap = np.empty((3, len(layers.CUMULANTS)))
    getattr(layers, f"layers_{variant}")(thetas, widths, T, dT, kap)
    for j, th in enumerate(thetas):
        for i, (m, jj) in enumerate(layers.CUMULANTS):
            expr = deep.layer_cumulant_derivative(variant, 2, m, jj)
            ref = sum(mpmath.mpf(str(sp.N(expr.subs({model.N: N, deep.theta: sp.nsimplify(th)}), 30)))
                      for N in widths)
            assert kap[j, i] == pytest.approx(float(ref), rel=1e-13, abs=1e-15)
        ts, _ = deep.layer_saddle(variant)
        T_ref = sum(float(sp.N(ts.subs({model.N: N, deep.theta: sp.nsimplify(th)}), 30)) for N in widths)
        assert T[j] == pytest.approx(T_ref, rel=1e-13)
        assert dT[j] == pytest.approx(-kap[j, list(layers.CUMULANTS).index((-1, 2))], rel=1e-14)
    lim = getattr(layers, f"theta_limit_{variant}")
    assert lim(30.0) == (15.0 if variant == "bare" else 14.0)


def test_likelihood_levels_are_T_derivatives_of_fit_and_fluctuations():
    _, ser = generated.deep(1, 3)
    lam, yt2 = np.array([0.0, 0.4, 2.5]), np.array([0.3, 1.2, 0.7])
    chi, kappa, g_v, T0 = 7.0, 0.45, 1.3, 0.2
    mpmath.mp.dps = 40

    def fit(T):
        return sum(chi * y / (2 * (g_v * mpmath.e**T * l + kappa)) for l, y in zip(lam, yt2))

    def fluct(T):
        return sum(mpmath.log(g_v * mpmath.e**T * l + kappa) / 2 for l in lam)

    for variant, levels in (("bare", {-1: fit, 0: fluct}), ("dressed", {-1: lambda T: fit(T) + fluct(T)})):
        dF = np.empty((1, len(ser.LIKELIHOOD)))
        getattr(ser, f"likelihood_{variant}")(np.array([T0]), np.array([chi]), kappa, g_v, lam, yt2, np.ones(3), dF)
        for i, (m, n) in enumerate(ser.LIKELIHOOD):
            ref = float(mpmath.diff(levels[m], T0, n)) if m in levels else 0.0
            assert dF[0, i] == pytest.approx(ref, rel=1e-12, abs=1e-14), (variant, m, n)


def test_a_depth_not_generated_names_the_derive_command():
    # a command that keeps the orders already generated: --order is the highest order it emits
    with pytest.raises(ValueError, match=rf"msat derive --order {generated.MAX_ORDER} --depth 9`"):
        generated.deep(9, 1)
    assert math.isfinite(generated.MAX_DEPTH) and generated.MAX_DEPTH >= 3
