"""The deep linear network's loop series (derive.deep, docs/theory.md §2d) against independent references.

- the many-level engine with two levels is the one-field engine (a symbolic identity);
- one layer's cumulant levels are Stirling's series of ln Gamma (Bernoulli numbers from SymPy);
- at depth 2, the first-order coefficient of the nested derivation equals the index formula of the
  two-component field in the original variables s_1, s_2 (many-component Wick engine, numbers at a
  saddle found by SymPy), bare and dressed.
"""
import pytest
import sympy as sp

from msat.derive import deep, levels, loops, model


@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_two_levels_are_the_one_field_engine(order):
    e = levels.expand_levels(order, top=0)
    b = loops.expand(order, dressed=False)
    for l in range(order + 1):
        for n in range(2 * order + 1):
            assert sp.simplify(e.weights[l][n] - b.weights[l][n]) == 0


def test_log_partition_first_order_is_the_vacuum_diagrams():
    """ln Z at hbar^1: -A4/(8 A2^2) + 5 A3^2/(24 A2^3) plus the insertions of the hbar^0 level."""
    z = levels.expand_levels(1).log_partition[1]
    A2, A3, A4, B1, B2 = sp.symbols("A_2 A_3 A_4 B_1 B_2")
    ref = (-A4 / (8 * A2**2) + 5 * A3**2 / (24 * A2**3) + B1**2 / (2 * A2) - B2 / (2 * A2)
           + A3 * B1 / (2 * A2**2))
    assert sp.simplify(z - ref) == 0


def test_layer_cumulants_are_stirlings_series():
    """One bare layer: W(theta) = ln int dt e^(-(N/2)(e^t - t) - theta t) = ln Gamma(m) - m ln(N/2),
    m = N/2 - theta. Its levels must be Stirling's series: m ln m - m - (1/2) ln m + sum_k
    B_2k / (2k (2k-1) m^(2k-1)), up to constants."""
    order = 5
    W = deep.layer_cumulants("bare", order)
    m = model.N / 2 - deep.theta
    stirling = {-1: m * sp.log(m) - m - m * sp.log(model.N / 2), 0: -sp.log(m) / 2}
    for lvl in range(1, order):
        stirling[lvl] = (sp.bernoulli(lvl + 1) / ((lvl + 1) * lvl * m**lvl)) if lvl % 2 else sp.S.Zero
    for lvl in range(-1, order):
        diff = sp.diff(W[lvl] - stirling[lvl], deep.theta)  # constants drop
        for N, th in ((40, -3), (7, sp.Rational(1, 3)), (1000, 250)):  # theta < N/2, the domain
            assert abs(sp.N(diff.subs({model.N: N, deep.theta: th}), 50)) < 1e-40, (lvl, N, th)


def test_dressed_layer_keeps_the_dressed_saddle():
    """Dressed split in t = ln s: the layer saddle solves (N/2)(s - 1) + 1 + theta = 0, the
    stationarity of (N/2)(s - ln s) + ln s + theta ln s in s (docs/theory.md §3)."""
    _, ratio = deep.layer_saddle("dressed")
    s = model.s
    stationary = sp.diff(model.N * (s - sp.log(s)) / 2 + sp.log(s) + deep.theta * sp.log(s), s) * s
    assert sp.simplify(stationary.subs(s, ratio)) == 0


def _two_field_first_order(dressed: bool):
    """<u>_1 at depth 2 from the index formula in s_1, s_2 (loops.expand_components): numbers."""
    lam = [sp.Rational(3, 2), sp.Rational(1, 2), sp.Rational(1, 5)]
    yt2 = [sp.Rational(7, 10), sp.Rational(2, 5), sp.Rational(9, 10)]
    N1, N2, chi, kappa = 14, 30, 9, sp.Rational(1, 2)
    s1, s2 = sp.symbols("s1 s2", positive=True)
    u = s1 * s2
    prior = sum(N * (s - sp.log(s)) / 2 for N, s in ((N1, s1), (N2, s2)))
    measure = sp.log(s1) + sp.log(s2)
    fit = sum(chi * y / (2 * (u * l + kappa)) for l, y in zip(lam, yt2))
    fluct = sum(sp.log(u * l + kappa) / 2 for l in lam)
    S0, S1 = (prior + measure + fit + fluct, sp.S.Zero) if dressed else (prior + fit, measure + fluct)
    xs = (s1, s2)
    sol = sp.nsolve([sp.diff(S0, x) for x in xs], xs, (1.2, 1.1), prec=40)
    at = {s1: sol[0], s2: sol[1]}
    H = sp.Matrix(2, 2, lambda i, j: sp.diff(S0, xs[i], xs[j]).subs(at))
    G = H.inv()
    c1, sym = loops.expand_components(2)
    vals = {}
    for i in range(2):
        vals[sym["O1"][i]] = sp.diff(u, xs[i]).subs(at)
        for j in range(2):
            vals[sym["O2"][i, j]] = sp.diff(u, xs[i], xs[j]).subs(at)
            vals[sym["G"][i, j]] = G[i, j]
            for k in range(2):
                vals[sym["S3"](i, j, k)] = sp.diff(S0, xs[i], xs[j], xs[k]).subs(at)
    value = c1.xreplace(vals)
    # the bare split adds the first-order insertion of S1: -O_i G_ij S1_j
    value -= sum(vals[sym["O1"][i]] * G[i, j] * sp.diff(S1, xs[j]).subs(at) for i in range(2) for j in range(2))
    return float(u.subs(at)), float(value), (lam, yt2, (N1, N2), chi, kappa)


@pytest.mark.parametrize("dressed", [False, True])
def test_depth_two_first_order_is_the_two_field_index_formula(dressed):
    import numpy as np

    from msat.runtime.methods import loop
    from msat.runtime.numerics import deep_saddle
    from msat.runtime.spectral import Spectrum

    u_ref, c1_ref, (lam, yt2, widths, chi, kappa) = _two_field_first_order(dressed)
    P = len(lam)
    spec = Spectrum(lam=np.array([float(x) for x in lam]), U=np.eye(P),
                    yt=np.sqrt(np.array([float(x) for x in yt2])), Kt=np.zeros((1, P)), kss=np.zeros(1))
    sd = deep_saddle.find_saddle(deep_saddle.DeepAction(spec, widths, chi, kappa, 1.0, dressed, 1))
    u, w = loop.deep_weights(spec, widths, np.array([sd.theta]), [float(chi)], kappa, 1.0, 1, dressed)
    assert u[0] == pytest.approx(u_ref, rel=1e-13)
    # O = u: O' = 1, O'' = 0 in u, so <u>_1 = w[1, 1]
    assert w[0, 1, 1] == pytest.approx(c1_ref, rel=1e-11)
