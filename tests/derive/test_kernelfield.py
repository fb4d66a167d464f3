"""The Wishart field's action (docs/theory.md §2c, derive.kernelfield): directional derivatives against
central finite differences of the action on explicit matrices, against the hand-written dense
reference, and the structured (basis) forms against what docs/theory.md §2c writes down."""
import numpy as np
import pytest
import sympy as sp

from msat.derive import fieldbasis, kernelfield as kf


def _spd(rng, n):
    B = rng.standard_normal((n, n))
    return B @ B.T / n + np.eye(n)


def _sym(rng, n):
    B = rng.standard_normal((n, n))
    return (B + B.T) / 2


def _evaluate(expr, env):
    P, n = env["P"], env["n"]
    e = expr.subs({kf.P: P, kf.n: n})
    subs = {k.subs({kf.P: P, kf.n: n}): sp.Matrix(v) for k, v in env.items() if hasattr(k, "shape")}
    subs.update({k: v for k, v in env.items() if isinstance(k, sp.Symbol)})
    subs[sp.Identity(P)] = sp.eye(P)
    subs[sp.Identity(n)] = sp.eye(n)
    out = e.xreplace(subs).doit()
    out = sp.Matrix(out) if getattr(out, "is_Matrix", False) or hasattr(out, "shape") else out
    return np.array(sp.N(out, 30), dtype=float)


@pytest.fixture(scope="module", params=["weights", "kernel"])
def setup(request):
    """A P x n map Phi with P > n (weight field) or Phi = I (kernel field)."""
    rng = np.random.default_rng(4)
    P, n = (4, 3) if request.param == "weights" else (3, 3)
    Phi = rng.standard_normal((P, n)) if request.param == "weights" else np.eye(3)
    env = {"P": P, "n": n, kf.F: _spd(rng, n), kf.Phi: Phi, kf.Q: _spd(rng, n),
           kf.y: rng.standard_normal((P, 1)), kf.X: _sym(rng, n), kf.Y: _sym(rng, n),
           kf.c0: 3.5, kf.chi: 2.5, kf.kappa: 0.4, kf.g_v: 1.3}
    return env


def _shifted(env, h, direction=kf.X):
    e = dict(env)
    e[kf.F] = env[kf.F] + h * env[direction]
    return e


@pytest.mark.parametrize("name,lower,direction", [
    ("dS", "S", kf.X), ("d2S", "dS", kf.X), ("d3S", "d2S", kf.Y), ("dbeta", "beta", kf.X),
    ("d2beta", "dbeta", kf.X)])
def test_directional_derivatives_match_finite_differences(setup, name, lower, direction):
    env = setup
    d = kf.derivatives()
    low = {"S": kf.action(), "beta": kf.readout(), **d}[lower]
    h = 1e-5
    fd = (_evaluate(low, _shifted(env, h, direction)) - _evaluate(low, _shifted(env, -h, direction))) / (2 * h)
    np.testing.assert_allclose(_evaluate(d[name], env), fd, rtol=1e-6, atol=1e-8)


def test_derived_forms_equal_the_dense_reference(setup):
    """derive.kernelfield's derivatives vs the hand-written dense reference used by the tests."""
    from kernelfield_dense import DenseField

    env = setup
    F, X, Y = env[kf.F], env[kf.X], env[kf.Y]
    dense = DenseField(env[kf.Phi], env[kf.Q], env[kf.c0], env[kf.y][:, 0], env[kf.chi], env[kf.kappa], env[kf.g_v])
    d = kf.derivatives()
    pr = dense.parts(F)
    assert float(_evaluate(d["dS"], env)) == pytest.approx(dense.d1(F, X), rel=1e-10)
    assert float(_evaluate(d["d2S"], env)) == pytest.approx(dense.d2(F, X, X), rel=1e-10)
    assert float(_evaluate(d["d3S"], env)) == pytest.approx(dense.d3(F, X, X, Y, pr), rel=1e-10)
    np.testing.assert_allclose(_evaluate(d["dbeta"], env)[:, 0], dense.dreadout(F, X, pr), rtol=1e-10)
    np.testing.assert_allclose(_evaluate(d["d2beta"], env)[:, 0], dense.d2readout(F, X, pr), rtol=1e-10)


def test_structured_hessian_is_hadamard_plus_one_low_rank_term():
    """docs/theory.md §2c: lam_ij = c0 - (g^2/2) mu_i mu_j (in the basis F = I) and chi g^2 b^T X M X b."""
    st = fieldbasis.structured()
    mu_i, mu_j = sp.symbols("mu_i mu_j")
    lam = sum(c * (mu_i ** len(d1)) * (mu_j ** len(d2)) for c, d1, d2 in st.hadamard)
    assert sp.simplify(lam - (kf.c0 - kf.g_v**2 / 2 * mu_i * mu_j)) == 0
    assert st.lowrank == ((kf.chi * kf.g_v**2, ("Mu",)),)
    assert st.weights == (sp.Rational(1, 2), sp.Rational(-1, 2))


def test_wishart_priors_match_theory():
    pk, pw = kf.priors()["kernel"], kf.priors()["weights"]
    assert sp.simplify(pk[0] - (kf.N - kf.P - 1) / 2) == 0 and pk[1] == kf.N / 2
    assert sp.simplify(pw[0] - (kf.N - kf.D - 1) / 2) == 0
    assert sp.simplify(pw[1] - kf.N * kf.D / (2 * kf.g_w)) == 0
