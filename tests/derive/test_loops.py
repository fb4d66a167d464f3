"""The loop-expansion engine (derive.loops) against independent references.

References: docs/theory.md §3's check formula (a symbolic identity), and a one-dimensional integral whose
moments are known in closed form to every order (a Gamma density), expanded with SymPy's own
series machinery rather than through the engine's Wick contraction.
"""
import math

import mpmath
import pytest
import sympy as sp

from msat.derive import loops


def test_first_order_dressed_is_the_check_formula():
    e = loops.expand(1, dressed=True)
    A, O = e.A, e.O
    check = O[2] / (2 * A[2]) - O[1] * A[3] / (2 * A[2] ** 2)
    assert sp.simplify(e.coefficients[1] - check) == 0
    assert e.coefficients[0] == O[0]


def test_bare_first_order_adds_the_fluctuation_insertion():
    e = loops.expand(1, dressed=False)
    A, B, O = e.A, e.B, e.O
    check = O[2] / (2 * A[2]) - O[1] * A[3] / (2 * A[2] ** 2) - O[1] * B[1] / A[2]
    assert sp.simplify(e.coefficients[1] - check) == 0


def test_dressed_equals_bare_with_no_fluctuation_terms():
    for L in range(4):
        b = loops.expand(L, dressed=False)
        d = loops.expand(L, dressed=True)
        zero = {x: 0 for x in b.B}
        for l in range(L + 1):
            assert sp.simplify(b.coefficients[l].subs(zero) - d.coefficients[l]) == 0


def test_weights_reassemble_the_coefficients():
    e = loops.expand(2, dressed=False)
    for l in range(3):
        rebuilt = sum(w * o for w, o in zip(e.weights[l], e.O))
        assert sp.simplify(rebuilt - e.coefficients[l]) == 0


def _laplace_reference(order, n_val, obs_power):
    """<s^p> under the density s^(n-1) e^(-n s) (a Gamma law) at large n.

    Exact: <s^p> = Gamma(n + p) / (Gamma(n) n^p). The engine's answer for the action
    S(s) = n (s - ln s) + ln s (hbar counting: n (s - ln s) at 1/hbar, ln s at hbar^0) must match
    this asymptotic series order by order, i.e. its truncation error must fall like n^-(L+1).
    """
    mpmath.mp.dps = 60
    p = mpmath.mpf(obs_power.p) / obs_power.q
    exact = mpmath.gamma(n_val + p) / (mpmath.gamma(n_val) * mpmath.mpf(n_val) ** p)
    s, n = sp.symbols("s n", positive=True)
    S0 = n * (s - sp.log(s))
    S1 = sp.log(s)
    O = s**obs_power
    e = loops.expand(order, dressed=False)
    vals = {}
    for k, sym in enumerate(e.A):
        vals[sym] = sp.diff(S0, s, k).subs(s, 1)
    for k, sym in enumerate(e.B):
        vals[sym] = sp.diff(S1, s, k).subs(s, 1)
    for k, sym in enumerate(e.O):
        vals[sym] = sp.diff(O, s, k).subs(s, 1)
    approx = sum(c.subs(vals) for c in e.coefficients)
    return exact, mpmath.mpf(str(sp.N(approx.subs(n, n_val), 60)))


@pytest.mark.slow
@pytest.mark.parametrize("order", [0, 1, 2, 3, 4])
def test_gamma_moments_converge_at_the_predicted_rate(order):
    errs = []
    ns = [200, 400, 800]
    for n_val in ns:
        exact, approx = _laplace_reference(order, n_val, obs_power=sp.Rational(1, 2))
        errs.append(abs(exact - approx))
    slope = float(mpmath.log(errs[-1] / errs[0]) / math.log(ns[-1] / ns[0]))
    assert abs(slope + (order + 1)) < 0.15, (errs, slope)


def test_many_component_first_order_is_the_index_formula():
    """docs/theory.md §2c: <O> = O + (1/2) O_ij H^-1_ij - (1/2) O_i H^-1_ij S_jkl H^-1_kl, from the same
    Taylor + Wick machinery for a two-component field (every index pattern appears at n = 2)."""
    c1, s = loops.expand_components(2)
    G, O1, O2, S3 = s["G"], s["O1"], s["O2"], s["S3"]
    idx = range(2)
    ref = (sp.Rational(1, 2) * sum(O2[i, j] * G[i, j] for i in idx for j in idx)
           - sp.Rational(1, 2) * sum(O1[i] * G[i, j] * S3(j, k, l) * G[k, l] for i in idx for j in idx for k in idx for l in idx))
    assert sp.expand(c1 - ref) == 0


def test_many_component_reduces_to_one_component():
    c1, s = loops.expand_components(1)
    e = loops.expand(1, dressed=True)
    A, O = e.A, e.O
    sub = {s["G"][0, 0]: 1 / A[2], s["O1"][0]: O[1], s["O2"][0, 0]: O[2], s["S3"](0, 0, 0): A[3]}
    assert sp.simplify(c1.xreplace(sub) - e.coefficients[1]) == 0
