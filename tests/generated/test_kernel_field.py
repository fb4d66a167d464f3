"""Every emitted function of generated/kernel_field.py (docs/theory.md §2c) against finite differences of the
action or the hand-written dense reference, in the basis T (F = T T^T, T^T Phi^T A^-1 Phi T = diag mu),
for the weight field (P > D, P < D) and the kernel field."""
import numpy as np
import pytest

from kernelfield_dense import DenseField
from msat import generated
from msat.runtime.numerics.wishart import WishartField

gen = generated.wishart_field()


def _sym(rng, n):
    B = rng.standard_normal((n, n))
    return (B + B.T) / 2


@pytest.fixture(params=[(7, 4, "weights"), (4, 6, "weights"), (5, 5, "kernel")])
def case(request):
    P, D, kind = request.param
    rng = np.random.default_rng(P * 10 + D)
    X = rng.standard_normal((P, D))
    y = rng.standard_normal(P)
    N, chi, kappa, g_v, g_w = 30.0, 3.0, 0.4, 1.3, 0.9
    if kind == "weights":
        field = WishartField.weights(X, y, N, chi, kappa, g_v, g_w)
        dense = DenseField.weights(X, y, N, chi, kappa, g_v, g_w)
        n = D
    else:
        K = g_w / D * X @ X.T
        field = WishartField.kernel(K, y, N, chi, kappa, g_v)
        dense = DenseField.kernel(K, y, N, chi, kappa, g_v)
        n = P
    B = rng.standard_normal((n, n))
    F = B @ B.T / n + 0.5 * np.eye(n)
    return field, dense, F, rng


def test_action_equals_dense(case):
    field, dense, F, _ = case
    assert field.action(F) == pytest.approx(dense.action(F), rel=1e-12)


def test_gradient_and_hessian_match_finite_differences(case):
    field, dense, F, rng = case
    bs = field.basis(F)
    Z = _sym(rng, field.n)
    step = bs.T @ Z @ bs.T.T
    h = 1e-4
    S = [field.action(F + k * h * step) for k in (-2, -1, 0, 1, 2)]
    d1 = (S[0] - 8 * S[1] + 8 * S[3] - S[4]) / (12 * h)
    d2 = (-S[0] + 16 * S[1] - 30 * S[2] + 16 * S[3] - S[4]) / (12 * h**2)
    G = gen.gradient(field.Q_apply(bs.T), bs.mu, bs.b, field.c0, field.chi, field.g)
    lam, k = gen.hessian(bs.mu, field.c0, field.chi, field.g)
    w = bs.mu * (Z @ bs.b)
    assert np.sum(G * Z) == pytest.approx(d1, rel=1e-7, abs=1e-8)
    assert np.sum(lam * Z**2) + k * bs.b @ Z @ w == pytest.approx(d2, rel=1e-5)
    assert dense.d1(F, step) == pytest.approx(d1, rel=1e-7, abs=1e-8)


def _dense_gaussian(dense, F):
    G = np.linalg.inv(dense.hessian(F))
    ev, U = np.linalg.eigh(G)
    return ev, [dense.mat(U[:, r]) for r in range(len(ev))]


def test_moments_loop_source_and_readout_match_the_dense_reference(case):
    field, dense, F, rng = case
    bs = field.basis(F)
    lam, k = field.hessian(bs)
    Lh, _ = gen.hadamard_inverses(lam)
    S, rhs = gen.woodbury_system(Lh, bs.b, bs.mu, k)
    R = np.linalg.solve(S, rhs)
    E = field.moments(bs, lam, k)
    ev, mats = _dense_gaussian(dense, F)
    pr = dense.parts(F)
    Ti = np.linalg.inv(bs.T)
    Zs = [Ti @ Xr @ Ti.T for Xr in mats]  # the same Gaussian in basis coordinates
    W = _sym(rng, field.n)
    np.testing.assert_allclose(gen.gaussian_moment(W, Lh, bs.b, R), sum(e * Z @ W @ Z for e, Z in zip(ev, Zs)),
                               atol=1e-12)
    for Wk, Ek in zip(gen.loop_moment_weights(bs.mu, bs.b), E):
        np.testing.assert_allclose(Ek, sum(e * Z @ Wk @ Z for e, Z in zip(ev, Zs)), atol=1e-12)
    Psi = gen.loop_source(*E, bs.mu, bs.b, field.c0, field.chi, field.g)
    Y = _sym(rng, field.n)
    ref = sum(e * dense.d3(F, Xr, Xr, bs.T @ Y @ bs.T.T, pr) for e, Xr in zip(ev, mats))
    assert np.sum(Psi * Y) == pytest.approx(ref, rel=1e-10)
    # readout: beta, (1/2) E d2beta (Z = 0) and -(1/2) dbeta[Z] (moments switched off)
    zero = np.zeros((field.n, field.n))
    b1, b0 = gen.readout_one_loop(*E, zero, bs.mu, bs.b, field.g)
    np.testing.assert_allclose(bs.T @ b0, dense.readout(F, pr), rtol=1e-12)
    curv = sum(e * dense.d2readout(F, Xr, pr) for e, Xr in zip(ev, mats)) / 2
    np.testing.assert_allclose(bs.T @ (b1 - b0), curv, rtol=1e-10, atol=1e-14)
    Z = _sym(rng, field.n)
    b1, b0 = gen.readout_one_loop(*[zero for _ in E], Z, bs.mu, bs.b, field.g)
    np.testing.assert_allclose(bs.T @ (b1 - b0), -0.5 * dense.dreadout(F, bs.T @ Z @ bs.T.T, pr), rtol=1e-10)


def test_test_feature_variance_is_the_schur_complement():
    """s2 = k** - k*^T K^-1 k* (generated) is the variance of a test feature given the training ones: the Schur
    complement of the joint kernel, checked against the conditional variance from the joint's inverse."""
    rng = np.random.default_rng(3)
    Xa = rng.standard_normal((7, 10))
    J = Xa @ Xa.T / 10  # the joint kernel of 5 training and 2 test points
    K, ks, kss = J[:5, :5], J[:5, 5:], np.diag(J)[5:]
    s2 = generated.wishart_field().test_feature_variance(ks, np.linalg.solve(K, ks), kss[:, None])[:, 0]
    np.testing.assert_allclose(s2, [1 / np.linalg.inv(J[np.r_[0:5, t], :][:, np.r_[0:5, t]])[5, 5] for t in (5, 6)],
                               rtol=1e-10)
