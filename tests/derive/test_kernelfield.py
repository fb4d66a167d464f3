"""Directional derivatives of the kernel field's action (THEORY §2c, derive.kernelfield) against
central finite differences of the action evaluated on explicit matrices."""
import numpy as np
import pytest
import sympy as sp

from msat.derive import kernelfield as kf


def _spd(rng, P):
    B = rng.standard_normal((P, P))
    return B @ B.T / P + np.eye(P)


def _sym(rng, P):
    B = rng.standard_normal((P, P))
    return (B + B.T) / 2


def _evaluate(expr, P, env):
    e = expr.subs(kf.P, P)
    subs = {k.subs(kf.P, P): sp.Matrix(v) for k, v in env.items() if hasattr(k, "shape")}
    subs.update({k: v for k, v in env.items() if not hasattr(k, "shape")})
    subs[sp.Identity(P)] = sp.eye(P)
    out = e.xreplace(subs).doit()
    out = sp.Matrix(out) if getattr(out, "is_Matrix", False) or hasattr(out, "shape") else out
    return np.array(sp.N(out, 30), dtype=float)


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(4)
    P = 3
    env = {kf.C: _spd(rng, P), kf.Kinv: np.linalg.inv(_spd(rng, P)), kf.y: rng.standard_normal((P, 1)),
           kf.X: _sym(rng, P), kf.Y: _sym(rng, P), kf.N: 11, kf.chi: 2.5, kf.kappa: 0.4, kf.g_v: 1.3}
    return P, env


def _shifted(env, h, direction=kf.X):
    e = dict(env)
    e[kf.C] = env[kf.C] + h * env[direction]
    return e


@pytest.mark.parametrize("name,lower,direction", [
    ("dS", "S", kf.X), ("d2S", "dS", kf.X), ("d3S", "d2S", kf.Y), ("dm", "m", kf.X), ("d2m", "dm", kf.X)])
def test_directional_derivatives_match_finite_differences(setup, name, lower, direction):
    P, env = setup
    d = kf.derivatives()
    low = {"S": kf.action(), "m": kf.train_mean(), **d}[lower]
    h = 1e-5
    fd = (_evaluate(low, P, _shifted(env, h, direction)) - _evaluate(low, P, _shifted(env, -h, direction))) / (2 * h)
    np.testing.assert_allclose(_evaluate(d[name], P, env), fd, rtol=1e-6, atol=1e-8)


def test_derived_forms_equal_the_dense_reference(setup):
    """derive.kernelfield's d2S, d3S vs the hand-written dense reference used by the tests."""
    from kernelfield_dense import DenseKernelField

    P, env = setup
    C = env[kf.C]
    K = np.linalg.inv(env[kf.Kinv])
    dense = DenseKernelField(K, env[kf.y][:, 0], env[kf.N], env[kf.chi], env[kf.kappa], env[kf.g_v])
    X, Y = env[kf.X], env[kf.Y]
    d = kf.derivatives()
    assert float(_evaluate(d["d2S"], P, env)) == pytest.approx(dense.d2(C, X, X), rel=1e-10)
    assert float(_evaluate(d["d3S"], P, env)) == pytest.approx(dense.d3(C, X, X, Y, dense.parts(C)), rel=1e-10)
    assert float(_evaluate(d["dS"], P, env)) == pytest.approx(dense.d1(C, X), rel=1e-10)
