"""Deep networks (docs/theory.md §2d): the depth contract (widths, depth, g_w per layer), the deep
NNGP kernels against Monte Carlo over random deep networks, and the exact posterior of deep
linear networks -- the integral over u = s_1 ... s_L with the prior of a product of Gammas --
against independent references: the one-layer exact method at depth 1, and at depth 2 a SciPy
quadrature of dense solves with the density of a product of two Gammas from adaptive quadrature."""
import json
import math

import numpy as np
import pytest
from scipy import special

from msat.runtime import data, params, predict
from msat.runtime.app import console
from msat.runtime.errors import InputError
from msat.runtime.methods import exact
from msat.runtime.spectral import nngp_kernels, spectrum
from tests_support import dense_conditionals, dense_exact


@pytest.mark.parametrize("N,chi", [(3, 1.0), (20, 1.0), (20, 20.0), (400, 400.0), (10**5, 10**5)])
def test_deep_integral_at_depth_one_is_the_one_layer_integral(N, chi):
    ds = data.builtin("teacher", P=8, D=12, P_test=3, seed=1)
    spec = spectrum(ds.X, ds.y, ds.X_test, 1.0)
    a, b = exact.moments(spec, N, chi, 0.5, 1.0), exact.deep_moments(spec, [N], chi, 0.5, 1.0)
    for k in ("train_mean", "test_mean", "test_var"):
        np.testing.assert_allclose(b[k], a[k], rtol=1e-12, atol=1e-15, err_msg=k)
    assert b["s_mean"] == pytest.approx(a["s_mean"], rel=1e-12)


def _log_product_density(N1, N2):
    """log density of tau = ln(s1 s2), s_l ~ Gamma(N_l/2, rate N_l/2), by adaptive quadrature of the
    convolution of the two log-Gamma densities (scipy.integrate.quad; no grid, no tilting)."""
    from scipy.integrate import quad
    from scipy.optimize import minimize_scalar

    def log_gamma_t(t, N):  # density of t = ln s
        k = N / 2
        return k * t - k * math.exp(t) + k * math.log(k) - special.gammaln(k)

    def logp(tau):
        def g(t):  # concave in t: one peak
            return log_gamma_t(t, N1) + log_gamma_t(tau - t, N2)

        t_peak = minimize_scalar(lambda t: -g(t), bounds=(tau - 15, 15), method="bounded",
                                 options={"xatol": 1e-10}).x
        peak = g(t_peak)
        val = quad(lambda t: math.exp(g(t) - peak), -40, 15, limit=400, epsabs=0, epsrel=1e-12,
                   points=[t_peak])[0]
        return peak + math.log(val) if val > 0 else -math.inf

    return logp


# the reference density to 1e-12 (a tighter epsrel hit quad's roundoff: its error estimate is then not trusted)
@pytest.mark.filterwarnings("error::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("widths,chi", [((10, 30), 1.0), ((10, 30), 30.0), ((6, 600), 1.0), ((6, 600), 600.0),
                                        ((40, 40), 40.0), ((200, 2000), 2000.0)])
def test_depth_two_exact_equals_a_dense_quadrature_with_the_product_density(widths, chi):
    from scipy.integrate import quad

    logp = _log_product_density(*widths)
    assert quad(lambda t: math.exp(logp(t)), -25, 4, limit=400)[0] == pytest.approx(1.0, rel=1e-9)
    ds = data.builtin("ising", P=8, D=12, P_test=3, seed=2)
    g_ws = (1.3, 0.7)
    m, mstar, u_mean = dense_exact(ds.X, ds.y, ds.X_test, None, chi, 0.5, g_w=math.prod(g_ws), log_prior=logp,
                                   width=40.0 / math.sqrt(min(widths)))
    r = predict(ds.X, ds.y, ds.X_test, widths=list(widths), g_w=list(g_ws), chi=chi, kappa=0.5, method="exact")
    np.testing.assert_allclose(r.train_mean, m, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(r.test_mean, mstar, rtol=1e-9, atol=1e-11)
    assert r.s_mean == pytest.approx(u_mean, rel=1e-9)
    assert r["quadrature_error"] < 1e-11


def test_depth_three_exact_equals_a_direct_three_dimensional_integral_over_the_layers():
    """P > D (a null space of X), kappa = 1e-3, g_v = 50, g_w = 10, 0.1, 3, chi = N_3 (an outside audit's
    setting): E[u], Var[u] and the test means against a trapezoid rule over (ln s_1, ln s_2, ln s_3) on a
    tensor grid, the likelihood from the thin SVD of X (no convolution, no tilt). The null space must enter
    with eigenvalue exactly 0: the audit's references took it from eigh of X X^T, whose round-off eigenvalues
    (~1e-16) move E[u] by 3e-7 here through chi y_perp^2 / kappa, and so reported msat 1e-7 off."""
    rng = np.random.default_rng(3)
    X, y, Xt = rng.standard_normal((20, 8)), np.sign(rng.standard_normal(20)), rng.standard_normal((3, 8))
    widths, g_ws, chi, kappa, g_v = (10, 20, 30), (10.0, 0.1, 3.0), 30.0, 1e-3, 50.0
    Q, sig, Vt = np.linalg.svd(X, full_matrices=False)
    lam, yt = math.prod(g_ws) * sig**2 / X.shape[1], Q.T @ y  # the nonzero modes; the null space's terms are constant
    kt = math.prod(g_ws) * (Xt @ Vt.T) * sig / X.shape[1]  # k_*^T U on the nonzero modes
    grids = [np.linspace(-16 / math.sqrt(N / 2), 10 / math.sqrt(N / 2), 90) for N in widths]
    T = np.meshgrid(*grids, indexing="ij")
    u = np.exp(sum(T)).ravel()
    A = g_v * u[:, None] * lam + kappa
    logw = sum(N / 2 * (t - np.exp(t)) for N, t in zip(widths, T)).ravel() - (
        chi / 2 * np.sum(yt**2 / A, axis=1) + 0.5 * np.sum(np.log(A), axis=1))
    p = np.exp(logw - logw.max())
    p /= p.sum()
    mstar = (g_v * u[:, None] * yt / A) @ kt.T  # m_*(u) = g_v u k_*^T (g_v u K + kappa)^-1 y
    r = predict(X, y, Xt, widths=list(widths), g_w=list(g_ws), chi=chi, kappa=kappa, g_v=g_v, method="exact")
    assert r.s_mean == pytest.approx(p @ u, rel=1e-11)
    assert r.s_var == pytest.approx(p @ (u - p @ u) ** 2, rel=1e-10)
    np.testing.assert_allclose(r.test_mean, p @ mstar, rtol=1e-11)


def test_of_two_modes_of_the_deep_integrand_the_heavier_one_is_integrated():
    """Inputs of 1e-2 and targets of 10 (an outside audit): the mode equation has roots near u = 1.6 and
    u = 4,900, the first 3,654 nats lighter. msat searched from u = 1, stopped at the light one, and reported
    E[u] = 1.57 with a quadrature error of 6e-18; every root is found and ranked now. The reference: a
    trapezoid rule over (ln s_1, ln s_2) on a tensor grid wide enough for both."""
    rng = np.random.default_rng(4)
    X, Xt, w0 = rng.standard_normal((10, 6)), rng.standard_normal((3, 6)), rng.standard_normal(6)
    y = 10 * (np.tanh(X @ w0 / math.sqrt(6)) + 0.3 * np.sin(X[:, 0]))
    X, Xt = 0.01 * X, 0.01 * Xt
    widths, g_ws, chi, kappa, g_v = (60, 120), (0.5, 3.0), 120.0, 2.0, 2.5
    lam, U = np.linalg.eigh(math.prod(g_ws) * X @ X.T / 6)
    yt, kt = U.T @ y, U.T @ (math.prod(g_ws) * X @ Xt.T / 6)
    t = np.linspace(-3, 12, 1501)
    T1, T2 = np.meshgrid(t, t, indexing="ij")
    u = np.exp(T1 + T2).ravel()
    A = g_v * u[:, None] * lam + kappa
    logw = (30 * (T1 - np.exp(T1)) + 60 * (T2 - np.exp(T2))).ravel() - 0.5 * chi * (yt**2 / A).sum(1) - 0.5 * np.log(
        A).sum(1)
    p = np.exp(logw - special.logsumexp(logw))
    r = predict(X, y, Xt, widths=list(widths), g_w=list(g_ws), chi=chi, kappa=kappa, g_v=g_v, method="exact")
    assert p[u < 20].sum() < 1e-300 and r.s_mean == pytest.approx(p @ u, rel=1e-9)
    np.testing.assert_allclose(r.test_mean, p @ ((g_v * u[:, None] * yt / A) @ kt), rtol=1e-9)


def test_depth_acts_first_like_a_smaller_width():
    """With equal widths the prior of u has variance ~ 2L/N: at chi = 1 a deep linear network's
    correction to the NNGP grows with depth (docs/theory.md §2d)."""
    ds = data.builtin("ising", P=12, D=20, P_test=4, seed=0)
    nn = predict(ds.X, ds.y, ds.X_test, N=60, chi=1.0, kappa=0.5, method="nngp")
    gaps = [np.max(np.abs(predict(ds.X, ds.y, ds.X_test, N=60, depth=L, chi=1.0, kappa=0.5, method="exact").test_mean
                          - nn.test_mean)) for L in (1, 2, 3)]
    assert gaps[0] < gaps[1] < gaps[2]
    assert gaps[2] / gaps[0] == pytest.approx(3, rel=0.3)


def test_hundreds_of_layers_match_importance_sampling_from_the_exact_prior():
    """At depth 300 and width 10 the prior of tau = ln u spans thousands of grid steps: before, its
    convolved density underflowed to zero everywhere and u/u0 overflowed at the grid's far end (exit 1,
    an internal error). Against self-normalised importance sampling with exact prior draws of u (products
    of 300 Gamma variables) weighted by dense likelihoods: no grid, no spectrum, no tilt."""
    rng = np.random.default_rng(0)
    X, y, Xt = rng.standard_normal((12, 4)), rng.standard_normal(12), rng.standard_normal((3, 4))
    L, N, M = 300, 10, 60000
    r = predict(X, y, Xt, N=N, depth=L, chi=1.0, kappa=0.5, method="exact")
    assert r.converged and np.all(np.isfinite(r.test_mean))
    draws = np.random.default_rng(1)
    tau = sum(np.log(draws.gamma(N / 2, 2 / N, size=M)) for _ in range(L))
    loglik, _, mstar, _ = dense_conditionals(X @ X.T / 4, X @ Xt.T / 4, np.sum(Xt**2, axis=1) / 4, y,
                                             np.exp(tau), 1.0, 0.5, 1.0)
    w = np.exp(loglik - loglik.max())
    w /= w.sum()
    assert 1.0 / np.sum(w**2) > M / 4  # the likelihood is nearly flat where this prior puts u: IS is reliable
    ref = w @ mstar
    mcse = np.sqrt(np.sum(w[:, None] ** 2 * (mstar - ref) ** 2, axis=0))
    assert np.max(np.abs(r.test_mean - ref) / mcse) < 4


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["erf", "relu"])
def test_deep_nngp_kernels_equal_monte_carlo_over_random_networks(activation):
    rng = np.random.default_rng(3)
    P, D, g_ws = 4, 5, (1.2, 0.8, 1.5)
    X = rng.standard_normal((P, D))
    K = nngp_kernels(X, None, g_ws, activation)[0]
    phi = {"erf": special.erf, "relu": lambda h: np.maximum(h, 0)}[activation]
    M, width = 40000, 400
    acc = np.zeros((P, P))
    acc2 = np.zeros((P, P))
    for _ in range(M // width):  # width units of independent networks: unit-averaged kernels
        h = X @ rng.standard_normal((D, width)) * math.sqrt(g_ws[0] / D)
        for g in g_ws[1:]:
            h = phi(h) @ rng.standard_normal((width, width)) * math.sqrt(g / width)
        f = phi(h)
        Ck = f @ f.T / width
        acc += Ck
        acc2 += Ck * Ck
    n = M // width
    mean, se = acc / n, np.sqrt((acc2 / n - (acc / n) ** 2) / n)
    assert np.all(np.abs(mean - K) < 5 * se + 0.02 * np.abs(K)), (mean, K)


def test_depth_contract():
    p = params.build(5, 3, 2, widths="50,200", g_w="1.2,0.8", kappa=0.5, method="exact")
    assert p.N == 200 and p.widths == (50, 200) and p.g_ws == (1.2, 0.8) and p.depth == 2
    pub = p.public()
    assert pub["N"] == 200 and pub["widths"] == [50, 200] and pub["depth"] == 2 and pub["g_w"] == [1.2, 0.8]
    assert params.build(5, 3, 2, N=30, depth=3, kappa=0.5, method="nngp").widths == (30, 30, 30)
    assert params.build(5, 3, 2, N=30, kappa=0.5, method="nngp").public()["g_w"] == [1.0]
    for kw, match in ((dict(widths="50,200", depth=3), "conflicts"), (dict(widths="50,200", N=30), "conflicts"),
                      (dict(widths="50,200", g_w="1,2,3"), "one per hidden layer"), (dict(), "required"),
                      (dict(widths="50,x"), "widths"), (dict(N=30, depth=0), "depth"),
                      (dict(N=30, depth=2, method="adaptive", order=2), "not available")):
        kw = {"method": "exact", **kw}
        with pytest.raises(InputError, match=match):
            params.build(5, 3, 2, kappa=0.5, **kw)


def test_deep_cli(tmp_path, capsys):
    base = ["predict", "--dataset", "teacher", "--P", "8", "--D", "5", "--P-test", "2", "--chi", "1,20",
            "--kappa", "0.5", "--method", "exact"]
    assert console.main(base + ["--widths", "20,20", "--g-w", "1,2"]) == 0
    rs = json.loads(capsys.readouterr().out)
    assert rs[0]["params"]["widths"] == [20, 20] and rs[0]["params"]["N"] == 20 and rs[1]["s_mean"] > 0
    assert console.main(base + ["--N", "20", "--depth", "2", "--g-w", "1,2"]) == 0
    assert json.loads(capsys.readouterr().out)[1]["test_mean"] == rs[1]["test_mean"]
    for bad in (["--widths", "10,20", "--depth", "3"], ["--N", "10", "--depth", "2", "--method", "adaptive", "--order", "2"], []):
        code = console.main([a for a in base if a not in ("--method", "exact")] + bad if "--method" in bad else base + bad)
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1, (bad, err)


def test_hundreds_of_layers_at_mean_field_scaling_match_the_direct_convolution(monkeypatch):
    """N = 200, 300 layers, chi = N: the FFT's round-off (~1e-17 of the peak) in the far tails of the prior of
    tau = ln u, raised by undoing the tilt (theta in the hundreds), swamped the integrand: s_mean 1.3e-219
    for 17.05, converged, no warning. The same density by direct convolution (no FFT) is the reference."""
    from msat.runtime.numerics import product_prior

    ds = data.builtin("teacher", P=6, D=4, P_test=2, seed=0)
    kw = dict(N=200, depth=300, chi=200.0, kappa=0.5, method="exact")
    fft = predict(ds.X, ds.y, ds.X_test, **kw)
    monkeypatch.setattr(product_prior, "DIRECT_MAX", 10**6)
    direct = predict(ds.X, ds.y, ds.X_test, **kw)
    assert fft.s_mean == pytest.approx(direct.s_mean, rel=1e-9) and direct.s_mean == pytest.approx(17.05, rel=1e-3)
    assert np.allclose(fft.test_mean, direct.test_mean, rtol=1e-9, atol=1e-12)


def test_a_deep_integral_its_grid_does_not_resolve_is_refused(monkeypatch, capsys):
    """The guard that compares the deep integral on two grids (halving the step) had never fired in a test: with
    the prior's density perturbed at the 1e-2 level on each grid (as FFT round-off once did, by far more), the
    answer is exit 3 naming the grid, not numbers called exact."""
    from msat.runtime.numerics import product_prior

    clean = product_prior.log_density

    def noisy(widths, theta, h):
        i0, logp = clean(widths, theta, h)
        noise = np.random.default_rng(int(round(1e6 * h))).standard_normal(logp.shape)
        return i0, logp + 1e-2 * noise

    base = ["predict", "--dataset", "teacher", "--P", "8", "--D", "5", "--P-test", "2", "--chi", "20",
            "--kappa", "0.5", "--method", "exact", "--widths", "20,20"]
    assert console.main(base) == 0
    capsys.readouterr()
    monkeypatch.setattr(product_prior, "log_density", noisy)
    assert console.main(base) == 3
    err = capsys.readouterr().err
    assert "not resolved on its grid" in err and "Traceback" not in err
