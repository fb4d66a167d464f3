"""derive.marginal (docs/theory.md §7): the hidden weights' posterior with the readout integrated out,
against the explicit Gaussian it stands for: the log density against scipy's multivariate normal of
y | W plus the prior, its gradient against central differences, and the conditional moments against
Gaussian conditioning of the joint covariance of (f, f*, y) written out in NumPy."""
import numpy as np
import pytest
import scipy.linalg
from scipy.stats import multivariate_normal

from msat import generated
from msat.generated import densities

M = generated.readout_marginal()


def _setup(act, seed=0, P=7, D=4, Q=3, N=5):
    rng = np.random.default_rng(seed)
    X, Xs = rng.standard_normal((P, D)), rng.standard_normal((Q, D))
    y = rng.standard_normal(P)
    W = rng.standard_normal((N, D)) * 0.7
    chi, kappa, g_v, g_w = 3.0, 0.4, 1.3, 0.8
    return X, Xs, y, W, (N, chi, kappa, g_v, g_w), densities.ACTIVATIONS.index(act)


def _features(X, W, act):
    Phi, dPhi = np.empty((X.shape[0], W.shape[0])), np.empty((X.shape[0], W.shape[0]))
    densities.features_and_slopes(X @ W.T, act, Phi, dPhi)
    return Phi, dPhi


def _log_density(X, y, W, pars, act):
    N, chi, kappa, g_v, g_w = pars
    var_a, s2 = M.variances(N, chi, kappa, g_v)
    Phi, dPhi = _features(X, W, act)
    Cov = M.covariance(Phi, var_a, s2)
    cf = scipy.linalg.cho_factor(Cov, lower=True)
    a = scipy.linalg.cho_solve(cf, y[:, None])
    CiPhi = scipy.linalg.cho_solve(cf, Phi)
    logdet = 2 * np.sum(np.log(np.diag(cf[0])))
    lp = M.log_density(float(y @ a[:, 0]), logdet, float(np.sum(W * W)), X.shape[1], g_w)
    G = M.feature_gradient(a, y[:, None], Phi, CiPhi, var_a)
    return lp, M.weight_gradient(G, dPhi, X, W, X.shape[1], g_w), (Phi, a, CiPhi, Cov, var_a, s2)


@pytest.mark.parametrize("act", ["linear", "erf", "relu"])
def test_log_density_is_the_gaussian_marginal_plus_prior_and_its_gradient(act):
    X, _, y, W, pars, code = _setup(act)
    N, chi, kappa, g_v, g_w = pars
    D = X.shape[1]
    lp, gW, (Phi, *_rest) = _log_density(X, y, W, pars, code)
    # y | W: f = Phi a with a ~ N(0, g_v/(chi N)), noise N(0, kappa/chi); W ~ N(0, g_w/D) entrywise
    cov = (g_v / (chi * N)) * Phi @ Phi.T + (kappa / chi) * np.eye(len(y))
    ref = multivariate_normal(np.zeros(len(y)), cov).logpdf(y) - 0.5 * D / g_w * np.sum(W * W)
    const = 0.5 * len(y) * np.log(2 * np.pi)
    assert lp - const == pytest.approx(ref, rel=1e-12, abs=1e-12)
    h, fd = 1e-6, np.empty_like(W)
    for i in range(W.shape[0]):
        for d in range(D):
            E = np.zeros_like(W)
            E[i, d] = h
            fd[i, d] = (_log_density(X, y, W + E, pars, code)[0] - _log_density(X, y, W - E, pars, code)[0]) / (2 * h)
    assert np.abs(gW - fd).max() <= 1e-6 * max(1.0, np.abs(fd).max())


@pytest.mark.parametrize("act", ["linear", "erf", "relu"])
def test_conditional_moments_are_gaussian_conditioning(act):
    X, Xs, y, W, pars, code = _setup(act, seed=1)
    _, _, (Phi, a, CiPhi, Cov, var_a, s2) = _log_density(X, y, W, pars, code)
    Phis, _ = _features(Xs, W, code)
    B = Phis @ Phi.T
    CiB = np.linalg.solve(Cov, B.T)
    train, train_var, test, var = M.conditional_moments(Phi, Phis, a, CiPhi, B, CiB, var_a, s2)
    # the joint covariance of (f, f*) and y, conditioned the textbook way
    F = np.vstack([Phi, Phis])
    S_ff = var_a * F @ F.T
    S_fy = S_ff[:, :len(y)]
    mean = S_fy @ np.linalg.solve(Cov, y)
    cov = S_ff - S_fy @ np.linalg.solve(Cov, S_fy.T)
    P = len(y)
    np.testing.assert_allclose(train[:, 0], mean[:P], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(test[:, 0], mean[P:], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(train_var[:, 0], np.diag(cov)[:P], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(var[:, 0], np.diag(cov)[P:], rtol=1e-9, atol=1e-12)
