"""generated/densities.py, deep networks (docs/theory.md §2d): the log posterior of L hidden layers
against an independent NumPy forward pass and Gaussian log priors, its back-propagated gradient
against central finite differences, depth 1 against the two-layer kernel (itself checked against
SymPy in test_densities.py), and the recorded observables against NumPy."""
import numpy as np
import pytest

from msat.generated import densities as d

ACTS = {"linear": lambda h: h, "erf": None, "relu": lambda h: np.maximum(h, 0.0)}


def _phi(act):
    if act == "erf":
        from scipy.special import erf
        return erf
    return ACTS[act]


def _call(theta, widths, X, y, chi, kappa, g_v, g_ws, act):
    P = X.shape[0]
    S = int(np.sum(widths)) * P
    grad = np.empty_like(theta)
    lp = d.deep_log_posterior(theta, widths, np.ascontiguousarray(X.T), y, chi, kappa, g_v, g_ws,
                              d.ACTIVATIONS.index(act), grad, np.empty(S), np.empty(S), np.empty(S), np.empty(P))
    return lp, grad


def _numpy_log_posterior(theta, widths, X, y, chi, kappa, g_v, g_ws, act):
    """sum of Gaussian log densities (constants dropped) for the model of docs/theory.md §2d."""
    phi = _phi(act)
    offs = d.deep_offsets(widths, X.shape[1])
    A, fan, lp = X.T, X.shape[1], 0.0
    for l, n in enumerate(widths):
        W = theta[offs[l]:offs[l + 1]].reshape(n, fan)
        lp -= np.sum(W**2) / (2 * g_ws[l] / fan)
        A, fan = phi(W @ A), n
    v = theta[offs[-2]:]
    lp -= np.sum(v**2) / (2 * g_v / (chi * widths[-1]))
    return lp - chi / (2 * kappa) * np.sum((y - v @ A) ** 2)


@pytest.mark.parametrize("act", ["linear", "erf", "relu"])
@pytest.mark.parametrize("widths", [[3, 5], [4, 2, 3]])
def test_deep_log_posterior_and_gradient(act, widths):
    rng = np.random.default_rng(len(widths) + 7 * len(act))
    P, D = 5, 4
    X, y = rng.standard_normal((P, D)), rng.standard_normal(P)
    widths = np.array(widths)
    g_ws = rng.uniform(0.5, 1.5, len(widths))
    theta = rng.standard_normal(d.deep_offsets(widths, D)[-1]) * 0.7
    args = (widths, X, y, 2.5, 0.4, 1.2, g_ws, act)
    lp, grad = _call(theta, *args)
    assert lp == pytest.approx(_numpy_log_posterior(theta, *args), rel=1e-12)
    h = 1e-6
    num = np.array([(_call(theta + h * e, *args)[0] - _call(theta - h * e, *args)[0]) / (2 * h)
                    for e in np.eye(theta.size)])
    assert np.max(np.abs(num - grad)) < 1e-6 * max(1.0, np.max(np.abs(grad)))


@pytest.mark.parametrize("act", ["linear", "erf", "relu"])
def test_depth_one_is_the_two_layer_network(act):
    rng = np.random.default_rng(11)
    P, D, N = 6, 4, 7
    X, y = rng.standard_normal((P, D)), rng.standard_normal(P)
    theta = rng.standard_normal(N * D + N)
    lp, grad = _call(theta, np.array([N]), X, y, 3.0, 0.5, 1.1, np.array([0.9]), act)
    W, a = theta[:N * D].reshape(N, D).copy(), theta[N * D:].copy()
    gW, ga = np.empty_like(W), np.empty(N)
    ref = d.network_log_posterior(W, a, X, y, 3.0, 0.5, 1.1, 0.9, d.ACTIVATIONS.index(act), gW, ga,
                                  np.empty((N, P)), np.empty(P), np.ascontiguousarray(X.T),
                                  np.empty((N, P)), np.empty((N, P)))
    assert lp == pytest.approx(ref, rel=1e-13)
    np.testing.assert_allclose(grad, np.concatenate([gW.ravel(), ga]), rtol=1e-12, atol=1e-12)


def test_deep_record_matches_numpy():
    rng = np.random.default_rng(5)
    P, Pt, D, widths = 5, 3, 4, np.array([3, 6])
    X, Xt, y = rng.standard_normal((P, D)), rng.standard_normal((Pt, D)), rng.standard_normal(P)
    dirs = rng.standard_normal((2, D))
    theta = rng.standard_normal(d.deep_offsets(widths, D)[-1])
    S = int(widths.sum()) * max(P, Pt)
    out_train, out_test, out_dirs = np.empty(P), np.empty(Pt), np.empty(2)
    ksums, wsum, aligns = np.zeros((2, P, P)), np.zeros((D, D)), np.empty(2)
    d.deep_record(theta, widths, np.ascontiguousarray(X.T), np.ascontiguousarray(Xt.T), y, dirs,
                  d.ACTIVATIONS.index("relu"), np.empty(S), np.empty(S), out_train, out_test, out_dirs,
                  ksums, wsum, aligns)
    W1 = theta[:12].reshape(3, 4)
    W2 = theta[12:30].reshape(6, 3)
    v = theta[30:]
    relu = ACTS["relu"]
    A1, A1t = relu(W1 @ X.T), relu(W1 @ Xt.T)
    A2, A2t = relu(W2 @ A1), relu(W2 @ A1t)
    np.testing.assert_allclose(out_train, v @ A2, rtol=1e-12)
    np.testing.assert_allclose(out_test, v @ A2t, rtol=1e-12)
    np.testing.assert_allclose(out_dirs, np.sum((W1 @ dirs.T) ** 2, axis=0) / 3, rtol=1e-12)
    np.testing.assert_allclose(wsum, W1.T @ W1 / 3, rtol=1e-12)
    for l, A in enumerate((A1, A2)):
        C = A.T @ A / A.shape[0]
        np.testing.assert_allclose(ksums[l], C, rtol=1e-12)
        assert aligns[l] == pytest.approx(y @ C @ y / (y @ y * np.linalg.norm(C)), rel=1e-12)
