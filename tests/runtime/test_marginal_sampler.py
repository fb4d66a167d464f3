"""The second ground truth (docs/theory.md §7): HMC over the hidden weights with the readout integrated
out exactly and the outputs Rao-Blackwellised (numerics.marginal_hmc). For linear networks it is
checked against the exact posterior; for erf and relu against the HMC over all weights, an
algorithmically different sampler of the same posterior, at chi = 1, sqrt(N) and N: z-scores of train
and test means and variances with both samplers' MCSEs."""
import json

import numpy as np
import pytest

from msat.runtime import predict, sample

pytestmark = pytest.mark.slow  # Monte Carlo: sampled networks


def _problem(P=8, D=8, Q=4, seed=4):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((P, D))
    return X, np.tanh(X[:, 0] + 0.5 * X[:, 1]), rng.standard_normal((Q, D))


KEYS = ("train_mean", "test_mean", "train_var", "test_var")


def test_linear_marginal_sampler_matches_the_exact_posterior():
    X, y, Xt = _problem(seed=5)
    N, zs = 16, []
    for chi in (1.0, 16.0):
        ex = predict(X, y, Xt, N=N, chi=chi, kappa=0.1, method="exact")
        nn = predict(X, y, Xt, N=N, chi=chi, kappa=0.1, method="nngp")
        rb = sample(X, y, Xt, N=N, chi=chi, kappa=0.1, samples=1000, chains=2, seed=1, readout="marginal")
        for k in ("train_mean", "test_mean", "test_var"):  # exact has no train_var
            zs.append((np.array(rb[k]) - ex[k]) / np.array(rb[k + "_mcse"]))
        if chi == N:  # the test is sharp: the NNGP's error is many MCSEs
            assert np.max(np.abs(nn.test_mean - ex.test_mean) / np.array(rb["test_mean_mcse"])) > 20
    z = np.concatenate(zs)
    assert np.abs(z).max() < 4
    assert 0.5 < np.sqrt(np.mean(z**2)) < 1.6



def test_a_warm_up_step_that_flies_off_is_rejected_not_a_failed_chain():
    """Linear units, chi = N = 12 (teacher set P = 10, D = 5, seed 3): a warm-up trial step of one chain reached
    |W| ~ 1e8, where Cov = s2 I + var_a Phi Phi^T (rank D < P) loses s2 to rounding and its Cholesky fails; the
    point exited 3 ("numerical failure ... rescale them") for sampler seeds 12, 100 and 101. The step is now a
    rejected proposal, and the chains agree with the exact posterior."""
    from msat.runtime.data.builtin import builtin
    d = builtin("teacher", P=10, D=5, P_test=4, seed=3)
    kw = dict(N=12, chi=12.0, kappa=0.5)
    ex = predict(d.X, d.y, d.X_test, method="exact", **kw)
    short = predict(d.X, d.y, d.X_test, method="sample", readout="marginal", samples=20, chains=2, seed=12, **kw)
    assert short.has_values  # the chains ran (20 draws may still disagree: converged is R-hat's verdict)
    zs = []
    for seed in (100, 101):
        rb = predict(d.X, d.y, d.X_test, method="sample", readout="marginal", samples=2000, chains=4, seed=seed, **kw)
        assert rb.converged
        for k in ("train_mean", "test_mean"):
            zs.append((np.array(rb[k]) - ex[k]) / np.array(rb[k + "_mcse"]))
    z = np.concatenate(zs)
    assert np.abs(z).max() < 4.5 and np.sqrt(np.mean(z**2)) < 1.8

def test_the_two_samplers_agree_for_erf_and_relu():
    """Measured (seed 2, 1000 draws x 2 chains): max |z| 3.6, RMS 1.01 over 144 comparisons."""
    X, y, Xt = _problem()
    N, zs = 16, []
    for act in ("erf", "relu"):
        for chi in (1.0, np.sqrt(N), float(N)):
            a, b = (sample(X, y, Xt, N=N, chi=chi, kappa=0.1, activation=act, samples=1000, chains=2, seed=2,
                           readout=ro) for ro in ("sampled", "marginal"))
            assert a["rhat_max"] < 1.02 and b["rhat_max"] < 1.02
            for k in KEYS:
                zs.append((np.array(a[k]) - b[k]) / np.hypot(a[k + "_mcse"], b[k + "_mcse"]))
    z = np.concatenate(zs)
    assert np.abs(z).max() < 4
    assert 0.7 < np.sqrt(np.mean(z**2)) < 1.4


def test_marginal_readout_is_a_one_layer_sampler_option(tmp_path, capsys):
    from msat.runtime.app import console

    np.savez(tmp_path / "d.npz", X=np.ones((4, 3)) + np.eye(4, 3), y=np.arange(4.0))
    base = ["--data", str(tmp_path / "d.npz"), "--chi", "1", "--kappa", "0.5"]
    assert console.main(["sample", *base, "--N", "6", "--readout", "marginal", "--samples", "50", "--chains", "1",
                         "--json", str(tmp_path / "r.json")]) == 0
    r = json.loads((tmp_path / "r.json").read_text())
    r = r[0] if isinstance(r, list) else r
    assert r["params"]["readout"] == "marginal" and r["observables"]["readout"] == "marginal"
    for k in ("train_mean_mcse", "test_mean_mcse", "train_var_mcse", "test_var_mcse", "rhat_max", "ess_min"):
        assert k in r
    capsys.readouterr()
    assert console.main(["sample", *base, "--depth", "2", "--N", "6", "--readout", "marginal"]) == 2
    assert console.main(["predict", *base, "--N", "6", "--method", "exact", "--readout", "marginal"]) == 2
    assert console.main(["sample", *base, "--N", "6", "--readout", "integrated"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("msat:") for line in err)


@pytest.mark.parametrize("activation", ["linear", "erf"])
def test_more_points_than_units_go_through_the_n_by_n_woodbury_form(activation):
    """Where P > N the sampler factorises the N x N matrix of the Woodbury identity, not Cov (P x P; an outside
    audit's P = 20,000, N = 20 took 12.7 GB): its log density, gradient and conditional moments equal the dense
    Gaussian algebra written here (Cov = var_a Phi Phi^T + s2 I, docs/theory.md §7) to 1e-9, and the gradient a
    central difference of the log density."""
    from scipy.special import erf

    from msat.runtime.numerics.marginal_hmc import _Posterior

    rng = np.random.default_rng(0)
    P, D, Q, N, chi, kappa, g_v, g_w = 300, 5, 4, 7, 3.0, 0.2, 1.3, 0.8
    X, y, Xt = rng.standard_normal((P, D)), rng.standard_normal(P), rng.standard_normal((Q, D))
    post = _Posterior(X, y, Xt, N, chi, kappa, g_v, g_w, activation)
    W = rng.standard_normal((N, D)) * 0.5
    lp, grad, state = post(W)
    phi = (lambda h: h) if activation == "linear" else erf
    var_a, s2 = g_v / (N * chi), kappa / chi
    Phi, Phis = phi(X @ W.T), phi(Xt @ W.T)
    Cov = var_a * Phi @ Phi.T + s2 * np.eye(P)
    a = np.linalg.solve(Cov, y)
    ref = -0.5 * D * np.sum(W * W) / g_w - 0.5 * np.linalg.slogdet(Cov)[1] - 0.5 * y @ a
    assert lp == pytest.approx(ref, rel=1e-9)
    dW = rng.standard_normal(W.shape)
    h = 1e-6
    fd = (post(W + h * dW)[0] - post(W - h * dW)[0]) / (2 * h)
    assert np.sum(grad * dW) == pytest.approx(fd, rel=1e-5)
    tm, tv, sm, sv = post.moments(W, state)
    K, Ks = var_a * Phi @ Phi.T, var_a * Phis @ Phi.T
    np.testing.assert_allclose(tm, K @ a, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sm, Ks @ a, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(tv, np.diag(K - K @ np.linalg.solve(Cov, K)), rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(sv, var_a * np.sum(Phis ** 2, axis=1) - np.sum(Ks * np.linalg.solve(Cov, Ks.T).T, axis=1),
                               rtol=1e-7, atol=1e-12)


def test_a_gradient_with_many_points_allocates_no_p_by_p_matrix():
    """P = 6,000 points and N = 10 units: one log density and gradient allocate under 30 MB at their peak (a P x P
    matrix alone is 288 MB; numpy's allocations are traced)."""
    import tracemalloc

    from msat.runtime.numerics.marginal_hmc import _Posterior

    rng = np.random.default_rng(1)
    P, D, N = 6000, 5, 10
    X, y = rng.standard_normal((P, D)), rng.standard_normal(P)
    post = _Posterior(X, y, rng.standard_normal((3, D)), N, 2.0, 0.1, 1.0, 1.0, "erf")
    W = rng.standard_normal((N, D)) * 0.4
    tracemalloc.start()
    try:
        lp, grad, state = post(W)
        post.moments(W, state)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.isfinite(lp) and np.all(np.isfinite(grad)) and peak < 30e6, peak


def test_the_woodbury_form_keeps_small_conditional_variances_to_high_precision():
    """At small kappa (s2 = kappa/chi tiny against var_a |Phi|^2) Cov^-1 = (I - Phi G^-1 Phi^T)/s2 cancels almost
    wholly on the span of Phi: the first version lost test variances there (2% off at kappa = 1e-6, negative at
    chi = N: a review). Against 40-digit mpmath Gaussian conditioning the train and test conditional variances
    and means hold 1e-6."""
    import mpmath

    from msat.runtime.numerics.marginal_hmc import _Posterior

    rng = np.random.default_rng(5)
    P, D, Q, N, kappa = 30, 3, 3, 4, 1e-6
    chi = float(N)
    X, y, Xt = rng.standard_normal((P, D)), np.tanh(rng.standard_normal(P)), rng.standard_normal((Q, D))
    post = _Posterior(X, y, Xt, N, chi, kappa, 1.0, 1.0, "linear")
    W = rng.standard_normal((N, D)) / np.sqrt(D)
    lp, grad, state = post(W)
    tm, tv, sm, sv = post.moments(W, state)
    mpmath.mp.dps = 40
    var_a, s2 = mpmath.mpf(1) / (N * chi), mpmath.mpf(kappa) / chi
    Phi, Phis = mpmath.matrix((X @ W.T).tolist()), mpmath.matrix((Xt @ W.T).tolist())
    Cov = var_a * Phi * Phi.T + s2 * mpmath.eye(P)
    K, Ks = var_a * Phi * Phi.T, var_a * Phis * Phi.T
    Ci = mpmath.inverse(Cov)
    CiK, CiKs, a = Ci * K, Ci * Ks.T, Ci * mpmath.matrix(y.tolist())
    kss = var_a * Phis * Phis.T
    Vt, Vs, ms = K - K * CiK, kss - Ks * CiKs, Ks * a
    ref_tv, ref_sv = [float(Vt[i, i]) for i in range(P)], [float(Vs[i, i]) for i in range(Q)]
    ref_sm = [float(ms[i]) for i in range(Q)]
    np.testing.assert_allclose(tv, ref_tv, rtol=1e-6)
    np.testing.assert_allclose(sv, ref_sv, rtol=1e-6)
    np.testing.assert_allclose(sm, ref_sm, rtol=1e-6)
